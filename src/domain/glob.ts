/**
 * Globs where `*` stands for any run of characters and every other character is literal, as
 * used for model lists (keys, upstreams) and endpoint grants. Matching never backtracks: the
 * glob is split at `*` into literal pieces, the first must start the name, the last must end
 * it, and each piece between is found left to right with indexOf. Leftmost placement is always
 * safe for `*`-only globs, so one pass is enough — O(length of the name × pieces), whatever the
 * input. (A RegExp with `.*` alternatives backtracks: a 40 KB name against `*mini*` stalled the
 * event loop for half a second.)
 */
export class Glob {
  /** The literal pieces between the stars. */
  private readonly pieces: readonly string[];
  /** Length of all pieces together: a shorter name cannot match. */
  private readonly minLength: number;
  readonly source: string;
  /** True for a glob without `*`. */
  readonly exact: boolean;
  /** True for a glob of stars only: matches everything. */
  readonly any: boolean;

  constructor(glob: string) {
    this.source = glob;
    this.pieces = glob.split('*');
    this.exact = this.pieces.length === 1;
    this.any = this.pieces.every((piece) => piece === '');
    this.minLength = this.pieces.reduce((sum, piece) => sum + piece.length, 0);
  }

  matches(name: string): boolean {
    if (this.exact) return name === this.source;
    if (this.any) return true;
    if (name.length < this.minLength) return false;
    const pieces = this.pieces;
    const first = pieces[0]!;
    const last = pieces[pieces.length - 1]!;
    if (!name.startsWith(first) || !name.endsWith(last)) return false;
    let at = first.length;
    const end = name.length - last.length;
    for (let i = 1; i < pieces.length - 1; i++) {
      const piece = pieces[i]!;
      if (piece === '') continue;
      const found = name.indexOf(piece, at);
      if (found === -1 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return at <= end;
  }
}

/** A list of globs: a name matches when any glob does. Exact names are looked up in a Set. */
export class GlobSet {
  private readonly exactNames: ReadonlySet<string>;
  private readonly wild: readonly Glob[];
  readonly any: boolean;
  /** The globs as written. */
  readonly patterns: readonly string[];
  /** The globs without a wildcard: names that can be listed. */
  readonly exact: readonly string[];

  constructor(globs: readonly string[]) {
    const compiled = globs.map((glob) => new Glob(glob));
    this.patterns = [...globs];
    this.any = compiled.some((glob) => glob.any);
    this.exact = compiled.filter((glob) => glob.exact).map((glob) => glob.source);
    this.exactNames = new Set(this.exact);
    this.wild = compiled.filter((glob) => !glob.exact);
  }

  matches(name: string): boolean {
    if (this.any) return true;
    if (this.exactNames.has(name)) return true;
    for (const glob of this.wild) if (glob.matches(name)) return true;
    return false;
  }
}
