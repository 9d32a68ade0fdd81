import type { Redis } from 'ioredis';
import type { FencingToken } from '../leader/fencing-token.ts';
import { quorum } from '../leader/validity.ts';
import { isNoScript } from '../redis/lua-script.ts';
import { batchWritesThisTurn } from '../redis/write-batching.ts';
import { ACCEPT_TOKEN } from './accept-token-script.ts';
import { decideFencing, type FencingOutcome, type NodeAnswer } from './fencing-decision.ts';

/**
 * The protected sidecar's check of one fencing token: compare-and-set-max on every lock node at
 * once, one round trip, decided as soon as a majority agrees (fencing-decision.ts says why that is
 * enough). Nothing is cached between requests: a replica that skipped the round because it "knew"
 * the newest token would let an old token through that another replica had already outdated.
 * Each node's client carries its own command timeout, so a dead node costs at most that.
 */
export class TokenFence {
  private readonly nodes: readonly Redis[];
  readonly quorum: number;

  constructor(nodes: readonly Redis[]) {
    this.nodes = nodes;
    this.quorum = quorum(nodes.length);
  }

  /** `key`: the resource's acceptedTokenKey(), built once per plan by the caller. */
  check(key: string, token: FencingToken): Promise<FencingOutcome> {
    const keysAndArgs = [key, String(token)];
    const nodes = this.nodes;
    const q = this.quorum;
    return new Promise((resolve) => {
      const answers: NodeAnswer[] = new Array<NodeAnswer>(nodes.length).fill(undefined);
      let arrived = 0;
      let done = false;
      const settle = (i: number, a: NodeAnswer) => {
        answers[i] = a;
        arrived++;
        if (done) return;
        const outcome = decideFencing(answers, q, arrived === nodes.length);
        if (outcome !== undefined) {
          done = true;
          resolve(outcome);
        }
      };
      for (let i = 0; i < nodes.length; i++) {
        const node = nodes[i] as Redis;
        batchWritesThisTurn(node);
        ACCEPT_TOKEN.evalsha(node, keysAndArgs).then(
          (r) => settle(i, r as [1 | 0, number]),
          (err: unknown) => {
            // A node restarted since the script was loaded: EVAL once, the reconnect loads it again.
            if (!isNoScript(err)) return settle(i, null);
            ACCEPT_TOKEN.eval(node, keysAndArgs).then((r) => settle(i, r as [1 | 0, number]), () => settle(i, null));
          },
        );
      }
    });
  }
}
