import { endpointGrantProblem } from '../config/key-entry.js';
import { GlobSet } from '../domain/glob.js';

/**
 * The endpoints an app key's owner granted it beyond the defaults, at the owner's risk: grants
 * such as "POST /v1/fine_tuning/jobs", "* /v1/evals*" or "GET /v1/models/*", compiled once per
 * key. A grant's method is exact (`*` = any method) and its path glob must match the whole path,
 * `*` standing for any run of characters, `/` included (linear-time matching, see domain/glob).
 */
export class EndpointGrants {
  /** The grants as written, in order. */
  readonly grants: readonly string[];
  private readonly anyMethod: GlobSet;
  private readonly byMethod: ReadonlyMap<string, GlobSet>;

  /**
   * Grants are validated where they are written (keyAttributesSchema); one that is malformed
   * here anyway — a database edited by hand — grants nothing rather than failing the key.
   */
  constructor(grants: readonly string[]) {
    this.grants = [...grants];
    const paths = new Map<string, string[]>();
    for (const grant of grants) {
      if (endpointGrantProblem(grant) !== undefined) continue;
      const space = grant.indexOf(' ');
      const method = grant.slice(0, space);
      const list = paths.get(method) ?? [];
      list.push(grant.slice(space + 1));
      paths.set(method, list);
    }
    this.anyMethod = new GlobSet(paths.get('*') ?? []);
    paths.delete('*');
    this.byMethod = new Map([...paths].map(([method, globs]) => [method, new GlobSet(globs)]));
  }

  /** The compiled grants of a key, or undefined when it has none (null or an empty list). */
  static from(grants: readonly string[] | null | undefined): EndpointGrants | undefined {
    return grants && grants.length > 0 ? new EndpointGrants(grants) : undefined;
  }

  /**
   * Whether a grant covers this request. `path` must be the canonical `/v1/...` path the gateway
   * forwards (decoded, `//` collapsed, no dot segments, no query): grants are matched against
   * nothing else. Methods compare exactly, as HTTP methods are case-sensitive.
   */
  allows(method: string, path: string): boolean {
    if (this.anyMethod.matches(path)) return true;
    return this.byMethod.get(method)?.matches(path) ?? false;
  }
}
