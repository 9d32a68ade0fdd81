import type { FencingToken } from '../leader/fencing-token.ts';

/**
 * The pure part of a fencing check: reading the token a request carries, and deciding from the
 * lock nodes' answers.
 *
 * Why a majority: a token T is accepted only once a majority of nodes stored a value ≥ T. Any later
 * check of an older token t < T asks every node; any majority it could win shares a node with T's
 * majority, and that node refuses t. So no replica of the protected service — whichever it is,
 * whatever it saw before — can accept t after T was accepted, and one node failing over to an empty
 * state does not bring t back while the others keep T.
 */

/** Tokens are decimal integers of at most 16 digits (the fence counter stays below 2^53). */
const TOKEN = /^[0-9]{1,16}$/;

export function parseFencingToken(value: string): FencingToken | undefined {
  if (!TOKEN.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** One node's answer: accepted (with what it held), refused (with the newer token it holds), or none (error, timeout). */
export type NodeAnswer = readonly [1 | 0, number] | null | undefined;

export type FencingOutcome =
  | { readonly result: 'accepted' }
  | { readonly result: 'stale'; readonly newest: FencingToken }
  | { readonly result: 'unavailable' };

/**
 * `undefined` while the answers so far cannot decide (a round ends as soon as this is defined, or
 * when every node answered). Accepted: a majority stored the token. Stale: more nodes refused than
 * a majority could spare — no retry could win. Otherwise (too few answers) nobody can tell.
 */
export function decideFencing(answers: readonly NodeAnswer[], quorum: number, complete: boolean): FencingOutcome | undefined {
  let accepted = 0;
  let refused = 0;
  let newest = 0;
  for (const a of answers) {
    if (a == null) continue;
    if (a[0] === 1) accepted++;
    else {
      refused++;
      if (a[1] > newest) newest = a[1];
    }
  }
  if (accepted >= quorum) return ACCEPTED;
  if (refused > answers.length - quorum) return { result: 'stale', newest };
  return complete ? UNAVAILABLE : undefined;
}

const ACCEPTED = Object.freeze({ result: 'accepted' as const });
const UNAVAILABLE = Object.freeze({ result: 'unavailable' as const });
