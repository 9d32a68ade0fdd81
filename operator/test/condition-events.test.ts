import { describe, expect, it } from 'vitest';
import { eventType, type Transition } from '../src/conditions.ts';

const t = (type: string, status: Transition['status'], reason: string): Transition => ({ type, status, reason, message: '' });

describe('the Event type of a condition transition, the same for every kind', () => {
  it.each([
    // Programmed=False: only a sidecar's NACK needs a person; rolling out, no pods yet, or a spec
    // already refused on Accepted do not.
    [t('Programmed', 'False', 'Rejected'), 'Warning'],
    [t('Programmed', 'False', 'Pending'), 'Normal'],
    [t('Programmed', 'False', 'NoTargets'), 'Normal'],
    [t('Programmed', 'False', 'NotAccepted'), 'Normal'],
    [t('Programmed', 'True', 'Programmed'), 'Normal'],
    [t('Accepted', 'False', 'Invalid'), 'Warning'],
    [t('Accepted', 'False', 'Conflicted'), 'Warning'],
    [t('Accepted', 'True', 'Accepted'), 'Normal'],
    // The TaskQueue's and LeaderElection's own conditions.
    [t('Ready', 'False', 'RedisUnavailable'), 'Warning'],
    [t('Ready', 'False', 'RedisNotConfigured'), 'Warning'],
    [t('Ready', 'False', 'NotAccepted'), 'Normal'],
    [t('Ready', 'True', 'StreamReady'), 'Normal'],
    [t('Autoscaling', 'False', 'ScaleTargetNotFound'), 'Warning'],
    [t('Elected', 'False', 'NoLeader'), 'Warning'],
    [t('Elected', 'True', 'LeaderElected'), 'Normal'],
  ] as const)('%o → %s', (transition, expected) => {
    expect(eventType(transition)).toBe(expected);
  });
});
