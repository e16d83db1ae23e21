import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { admitArgs, admitKeys, decodeAdmit, keyNames, ledgerExpiry, releaseKeys, reservationHoldMs, toNano, TOTAL_LEDGER_TTL_MS, wholeTokens } from '../../../src/limits/redis-keys.js';
import { periodBounds } from '../../../src/limits/periods.js';

const YEAR_2020 = Date.UTC(2020, 0, 1);
const YEAR_2040 = Date.UTC(2040, 0, 1);
const instant = fc.integer({ min: YEAR_2020, max: YEAR_2040 });

describe('shared limit keys', () => {
  it('name one key\'s data under one hash tag, short, and nothing else', () => {
    const names = keyNames('4f0c2a', Date.parse('2026-12-03T09:00:00Z'));
    assert.deepEqual(admitKeys(names), ['l:{4f0c2a}:r', 'l:{4f0c2a}:t', 'l:{4f0c2a}:ta', 'l:{4f0c2a}:h', 'l:{4f0c2a}:hv', 'l:{4f0c2a}:d:20790', 'l:{4f0c2a}:m:24323', 'l:{4f0c2a}:a']);
    assert.deepEqual(releaseKeys(names), ['l:{4f0c2a}:t', 'l:{4f0c2a}:ta', 'l:{4f0c2a}:h', 'l:{4f0c2a}:hv', 'l:{4f0c2a}:d:20790', 'l:{4f0c2a}:m:24323', 'l:{4f0c2a}:a']);
  });

  it('name the same day and month ledger exactly when two instants share the UTC period', () => {
    fc.assert(
      fc.property(instant, instant, (a, b) => {
        const [dayA, monthA] = keyNames('k', a).ledgers;
        const [dayB, monthB] = keyNames('k', b).ledgers;
        assert.equal(dayA === dayB, periodBounds('day', a).start === periodBounds('day', b).start);
        assert.equal(monthA === monthB, periodBounds('month', a).start === periodBounds('month', b).start);
      }),
    );
  });

  it('let day and month ledgers outlive their period by an hour, and the lifetime ledger slide', () => {
    const now = Date.parse('2026-12-31T23:59:59.999Z');
    assert.equal(ledgerExpiry('day', now), Date.parse('2027-01-01T01:00:00Z'));
    assert.equal(ledgerExpiry('month', now), Date.parse('2027-01-01T01:00:00Z'));
    assert.equal(ledgerExpiry('total', now), 0);
  });
});

describe('shared limit script arguments', () => {
  it('encode unset limits as -1, USD budgets in nanodollars, and the budget period', () => {
    assert.deepEqual(admitArgs('ab:1', { rpm: 10 }, 0, 0, 8000), ['ab:1', '10', '-1', '-1', '-1', '-1', '0', '0', '0', '8000', String(TOTAL_LEDGER_TTL_MS)]);
    assert.deepEqual(admitArgs('ab:2', { tpm: 1000, rpd: 5, budgetTokens: 50_000, budgetUsd: 25.5, budgetPeriod: 'month' }, 120, 3_000, 1).slice(1, 7), ['-1', '1000', '5', '50000', '25500000000', '2']);
    assert.equal(admitArgs('x', { budgetUsd: 1 }, 0, 0, 1)[6], '3', 'a budget without a period counts in total');
    assert.equal(admitArgs('x', { budgetTokens: 1, budgetPeriod: 'day' }, 0, 0, 1)[6], '1');
  });

  it('write every number as plain integer digits that Redis parses back exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.integer({ min: 0, max: 9_000_000 }), (nano, tokens) => {
        const args = admitArgs('id', { budgetUsd: nano / 1e9, tpm: tokens }, tokens, nano, 1000);
        for (const arg of args.slice(1)) assert.match(arg, /^-?\d+$/);
        assert.equal(Number(args[5]), toNano(nano / 1e9));
        assert.equal(args[8], String(nano));
      }),
    );
  });

  it('sum whole-nanodollar costs in any order without drift', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000_000_000 }), { maxLength: 50 }), (costsInNano) => {
        const dollars = costsInNano.map((nano) => nano / 1e9);
        const summed = dollars.map(toNano).reduce((sum, nano) => sum + nano, 0);
        assert.equal(summed, costsInNano.reduce((sum, nano) => sum + nano, 0));
      }),
    );
  });

  it('never hold less than asked: fractional tokens round up, junk counts as nothing', () => {
    assert.equal(wholeTokens(10.2), 11);
    assert.equal(wholeTokens(-3), 0);
    assert.equal(wholeTokens(Number.NaN), 0);
    assert.equal(toNano(Number.POSITIVE_INFINITY), 0);
    assert.equal(toNano(-1), 0);
  });
});

describe('admit script replies', () => {
  it('decode an admission, a refusal and a request to seed a ledger', () => {
    const values = [0, 1_700_000_000_000, 3, 1_699_999_999_000, 0, 400, 1_699_999_999_000, 0, 7, 100, 2_000, 50, 60];
    assert.deepEqual(decodeAdmit(values), {
      status: 'admitted',
      now: 1_700_000_000_000,
      requests: 3,
      lastRequest: 1_699_999_999_000,
      requestAt: 0,
      tokensUsed: 400,
      lastTokens: 1_699_999_999_000,
      tokensAt: 0,
      today: 7,
      spentTokens: 100,
      spentNano: 2_000,
      heldTokens: 50,
      heldNano: 60,
    });
    assert.equal(decodeAdmit([1, ...values.slice(1)]).status, 'refused');
    assert.deepEqual(decodeAdmit([2, 2]), { status: 'seed', period: 'month' });
  });

  it('refuse a reply of the wrong shape instead of admitting on it', () => {
    for (const reply of [null, 'OK', [], [0, 1, 2], [2, 9], [3, ...new Array(12).fill(0)], [0, '1', ...new Array(11).fill(0)]]) {
      assert.throws(() => decodeAdmit(reply), /unexpected reply from the admit script/);
    }
  });
});

describe('reservation hold', () => {
  it('lasts connect + first byte + ten idle gaps: about 12 minutes with the defaults', () => {
    assert.equal(reservationHoldMs({ connectTimeoutMs: 10_000, firstByteTimeoutMs: 120_000, idleTimeoutMs: 60_000 }), 730_000);
  });
});
