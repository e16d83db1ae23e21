/**
 * Which turns of a conversation go upstream with a new prompt: the newest whole turns whose
 * tokens fit the window, oldest dropped first. A pure function of the turns, the limits and a
 * token counter (the gateway's tokenizer, metering/token-estimate.ts), so it is unit- and
 * property-tested on its own.
 */

/** What the window reads of a turn. */
export interface TurnText {
  readonly prompt: string;
  readonly answer: string;
}

export interface WindowLimits {
  /** Tokens the selected turns may take in all, their message framing included. */
  readonly maxTokens: number;
  /** Turns selected, at most. */
  readonly maxTurns: number;
}

/**
 * Each chat message costs its content's tokens plus 3 for its framing (`<|start|>{role}\n…<|end|>\n`),
 * as OpenAI's cookbook counts them ("How to count tokens with tiktoken"); a turn is two messages.
 */
export const TOKENS_PER_MESSAGE = 3;

/** The tokens a turn adds to a chat request: its prompt and answer as two messages. */
export function turnTokens(turn: TurnText, count: (text: string) => number): number {
  return count(turn.prompt) + count(turn.answer) + 2 * TOKENS_PER_MESSAGE;
}

/**
 * The longest run of newest turns (`turns` are oldest first) within both limits, oldest first.
 * Whole turns only: the history always starts with a user message and never with half an
 * exchange. A newest turn larger than the whole window leaves no history at all.
 */
export function selectHistory<T extends TurnText>(turns: readonly T[], limits: WindowLimits, count: (text: string) => number): T[] {
  let tokens = 0;
  let start = turns.length;
  while (start > 0 && turns.length - start < limits.maxTurns) {
    const cost = turnTokens(turns[start - 1]!, count);
    if (tokens + cost > limits.maxTokens) break;
    tokens += cost;
    start--;
  }
  return turns.slice(start);
}
