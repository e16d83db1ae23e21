import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { selectHistory, turnTokens, TOKENS_PER_MESSAGE } from '../../../src/conversations/history-window.js';
import { countTokens } from '../../../src/metering/token-estimate.js';

const count = (text: string): number => countTokens(text, 'gpt-4o-mini');
const turnArb = fc.record({ prompt: fc.string({ maxLength: 80 }), answer: fc.string({ maxLength: 120 }) });

describe('selectHistory', () => {
  it('keeps everything that fits, oldest first', () => {
    const turns = [
      { prompt: 'Hi, I am Ann.', answer: 'Hello Ann!' },
      { prompt: 'What is my name?', answer: 'Ann.' },
    ];
    assert.deepEqual(selectHistory(turns, { maxTokens: 10_000, maxTurns: 100 }, count), turns);
  });

  it('counts a turn as its two messages with the tokenizer: content plus 3 framing tokens each', () => {
    const turn = { prompt: 'Hello there, how are you?', answer: 'Fine, thanks.' };
    assert.equal(turnTokens(turn, count), count(turn.prompt) + count(turn.answer) + 2 * TOKENS_PER_MESSAGE);
    assert.deepEqual(selectHistory([turn], { maxTokens: turnTokens(turn, count), maxTurns: 10 }, count), [turn], 'exactly the window fits');
    assert.deepEqual(selectHistory([turn], { maxTokens: turnTokens(turn, count) - 1, maxTurns: 10 }, count), [], 'one token less does not');
  });

  it('drops the oldest whole turns first, and stops at the first turn that does not fit', () => {
    const big = { prompt: 'word '.repeat(200), answer: 'ok' };
    const small = (n: number) => ({ prompt: `q${n}`, answer: `a${n}` });
    const turns = [small(1), big, small(2), small(3)];
    const budget = turnTokens(small(2), count) + turnTokens(small(3), count) + 10;
    // small(1) would fit on its own, but the history must be a contiguous run of the newest turns.
    assert.deepEqual(selectHistory(turns, { maxTokens: budget, maxTurns: 100 }, count), [small(2), small(3)]);
  });

  it('a newest turn larger than the window leaves no history', () => {
    const turns = [{ prompt: 'a', answer: 'b' }, { prompt: 'long '.repeat(100), answer: 'c' }];
    assert.deepEqual(selectHistory(turns, { maxTokens: 50, maxTurns: 100 }, count), []);
  });

  it('property: the newest run of turns within both limits, and as long as they allow', () => {
    fc.assert(
      fc.property(fc.array(turnArb, { maxLength: 30 }), fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 40 }), (turns, maxTokens, maxTurns) => {
        const chosen = selectHistory(turns, { maxTokens, maxTurns }, count);
        // A suffix of the turns, in order.
        assert.deepEqual(chosen, turns.slice(turns.length - chosen.length));
        const tokens = chosen.reduce((sum, turn) => sum + turnTokens(turn, count), 0);
        assert.ok(tokens <= maxTokens);
        assert.ok(chosen.length <= maxTurns);
        // Maximal: one more (older) turn would break a limit.
        if (chosen.length < turns.length && chosen.length < maxTurns) {
          assert.ok(tokens + turnTokens(turns[turns.length - chosen.length - 1]!, count) > maxTokens);
        }
      }),
    );
  });

  it('property: a larger window never sends fewer turns', () => {
    fc.assert(
      fc.property(fc.array(turnArb, { maxLength: 20 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 300 }), (turns, maxTokens, more) => {
        const small = selectHistory(turns, { maxTokens, maxTurns: 50 }, count).length;
        const large = selectHistory(turns, { maxTokens: maxTokens + more, maxTurns: 50 }, count).length;
        assert.ok(large >= small);
      }),
    );
  });
});
