import { Endpoint } from './endpoint.ts';

/**
 * The endpoints of one Upstream, replaced whole by each update (standalone resolution or the
 * operator's endpoint updates). An address present before and after keeps its Endpoint — its
 * latency, outstanding count and ejection survive churn; a new one starts its slow start now.
 */
export class EndpointSet {
  private list: readonly Endpoint[] = [];
  private readonly onRemoved: (ep: Endpoint) => void;

  constructor(onRemoved: (ep: Endpoint) => void = () => {}) {
    this.onRemoved = onRemoved;
  }

  get all(): readonly Endpoint[] {
    return this.list;
  }

  update(addresses: readonly string[], now: number): void {
    const byAddress = new Map(this.list.map((e) => [e.address, e]));
    const next: Endpoint[] = [];
    for (const a of new Set(addresses)) {
      next.push(byAddress.get(a) ?? new Endpoint(a, now));
      byAddress.delete(a);
    }
    this.list = next;
    for (const gone of byAddress.values()) this.onRemoved(gone);
  }
}
