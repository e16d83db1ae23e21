import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnQueue } from '../../../src/conversations/turn-queue.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TurnQueue', () => {
  it('lets the turns of one conversation in one at a time, in the order they asked', async () => {
    const queue = new TurnQueue();
    const order: string[] = [];
    const first = await queue.acquire('c');
    const second = queue.acquire('c').then((release) => (order.push('second'), release));
    const third = queue.acquire('c').then((release) => (order.push('third'), release));
    await tick();
    assert.deepEqual(order, [], 'both wait while the first holds');
    first();
    (await second)();
    (await third)();
    assert.deepEqual(order, ['second', 'third']);
    assert.equal(queue.size, 0, 'no entry is left behind');
  });

  it('does not hold one conversation up for another', async () => {
    const queue = new TurnQueue();
    const a = await queue.acquire('a');
    const b = await queue.acquire('b');
    assert.equal(queue.size, 2);
    a();
    b();
    assert.equal(queue.size, 0);
  });

  it('a release called twice releases once', async () => {
    const queue = new TurnQueue();
    const first = await queue.acquire('c');
    const waiting = queue.acquire('c');
    const third = queue.acquire('c');
    let thirdIn = false;
    void third.then(() => (thirdIn = true));
    first();
    const second = await waiting;
    first();
    await tick();
    assert.equal(thirdIn, false, 'the third still waits for the second');
    second();
    (await third)();
    assert.equal(queue.size, 0);
  });
});
