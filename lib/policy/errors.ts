/** One problem with one field: `path` is the field path a person can find in their YAML. */
export interface Issue {
  path: string;
  message: string;
}

/**
 * A policy (or a whole config file) that is refused. The message lists every issue with its field
 * path, so the person who wrote it can act on it without reading code.
 */
export class PolicyValidationError extends Error {
  readonly code = 'SLUICE_ERR_POLICY_INVALID';
  readonly issues: readonly Issue[];

  constructor(subject: string, issues: readonly Issue[]) {
    super(`${subject} is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'PolicyValidationError';
    this.issues = issues;
  }
}
