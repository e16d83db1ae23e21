/**
 * Orders the turns of one conversation within this process: a turn holds its conversation from
 * reading the history until its answer is stored (or it failed), so a second message sent
 * meanwhile waits and then sees the first's answer. Conversations do not wait for each other.
 *
 * Across gateway instances this gives no order (each has its own queue): the storage stays
 * consistent (storage/conversations-repository.ts), but two messages of one conversation served
 * at once by two instances may both be answered without the other. README, "Conversations".
 */
export class TurnQueue {
  /** Per conversation, the promise the next turn waits for; gone when no turn holds or waits. */
  readonly #tails = new Map<string, Promise<void>>();

  /** Conversations with a turn holding or waiting. */
  get size(): number {
    return this.#tails.size;
  }

  /**
   * Resolves, once every earlier turn of `conversation` released it, with the function that
   * releases it in turn. Call it exactly once, on every path (later calls do nothing).
   */
  acquire(conversation: string): Promise<() => void> {
    const previous = this.#tails.get(conversation);
    let open!: () => void;
    const mine = new Promise<void>((resolve) => (open = resolve));
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#tails.set(conversation, tail);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      open();
      // The last turn in line leaves no entry behind.
      if (this.#tails.get(conversation) === tail) this.#tails.delete(conversation);
    };
    return previous === undefined ? Promise.resolve(release) : previous.then(() => release);
  }
}
