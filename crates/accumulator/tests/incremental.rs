//! The incremental API: per-transaction deltas, the 0 ↔ >0 transitions of `transactions`,
//! checked arithmetic that names the field, and misuse rejected without changing state.

use accumulator::{Accumulator, AccumulatorError, Field, TxDelta};
use storage_traits::model::{ScriptType, TxId, TxOutCompact, TxOutSetInfo};

fn p2pkh(value: u64, tag: u8) -> TxOutCompact {
    TxOutCompact {
        value,
        script_hash: [tag; 20],
        script_type: ScriptType::P2pkh,
    }
}

fn op_return() -> TxOutCompact {
    TxOutCompact {
        value: 0,
        script_hash: [0x6a; 20],
        script_type: ScriptType::NonStandard,
    }
}

const A: TxId = TxId([0xA1; 32]);
const B: TxId = TxId([0xB2; 32]);

#[test]
fn transactions_follow_the_zero_transitions() {
    let mut acc = Accumulator::new();
    acc.add_transaction(A, &[p2pkh(10, 1), p2pkh(20, 2), op_return()])
        .unwrap();
    assert_eq!((acc.transactions(), acc.transaction_outputs()), (1, 2));
    assert_eq!(acc.total_zatoshis(), 30);

    // A transaction with only an uncounted output does not count.
    acc.add_transaction(B, &[op_return()]).unwrap();
    assert_eq!((acc.transactions(), acc.transaction_outputs()), (1, 2));

    // Spend one of A's two: >0 → >0, still one transaction.
    acc.spend_outputs(A, 2, &[(0, p2pkh(10, 1))]).unwrap();
    assert_eq!((acc.transactions(), acc.transaction_outputs()), (1, 1));

    // Spend the other: >0 → 0.
    acc.spend_outputs(A, 1, &[(1, p2pkh(20, 2))]).unwrap();
    assert_eq!(acc, Accumulator::new());

    // Roll the second spend back: 0 → >0.
    acc.unspend_outputs(A, 0, &[(1, p2pkh(20, 2))]).unwrap();
    assert_eq!((acc.transactions(), acc.transaction_outputs()), (1, 1));
    assert_eq!(acc.total_zatoshis(), 20);
}

#[test]
fn remove_transaction_undoes_add_transaction() {
    let mut acc = Accumulator::new();
    acc.add_transaction(A, &[p2pkh(1, 1)]).unwrap();
    let before = acc;
    let outs = [p2pkh(5, 5), op_return(), p2pkh(7, 7)];
    acc.add_transaction(B, &outs).unwrap();
    assert_ne!(acc, before);
    acc.remove_transaction(B, &outs).unwrap();
    assert_eq!(acc, before);
}

#[test]
fn created_and_spent_in_one_delta() {
    let mut acc = Accumulator::new();
    acc.apply(&TxDelta {
        txid: A,
        counted_unspent_before: 0,
        added: &[(0, p2pkh(3, 3)), (1, p2pkh(4, 4))],
        removed: &[(0, p2pkh(3, 3))],
    })
    .unwrap();
    let mut expected = Accumulator::new();
    expected.unspend_outputs(A, 0, &[(1, p2pkh(4, 4))]).unwrap();
    assert_eq!(acc, expected);
}

#[test]
fn overflow_names_the_field_and_changes_nothing() {
    // A set as large as bytes_serialized allows.
    let outputs = u64::MAX / 65;
    let start = Accumulator::from_info(TxOutSetInfo {
        transactions: 1,
        transaction_outputs: outputs,
        bytes_serialized: outputs * 65,
        hash_serialized: [7; 32],
        total_zatoshis: 1,
    })
    .unwrap();
    let mut acc = start;
    let err = acc.add_transaction(B, &[p2pkh(1, 1)]).unwrap_err();
    assert!(
        matches!(
            err,
            AccumulatorError::Overflow {
                field: Field::BytesSerialized,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("bytes_serialized"), "{err}");
    assert!(err.to_string().contains(&hex::encode(B.0)), "{err}");
    assert_eq!(acc, start);

    let start = Accumulator::from_info(TxOutSetInfo {
        transactions: 1,
        transaction_outputs: 1,
        bytes_serialized: 65,
        hash_serialized: [7; 32],
        total_zatoshis: u64::MAX - 5,
    })
    .unwrap();
    let mut acc = start;
    let err = acc.add_transaction(B, &[p2pkh(6, 1)]).unwrap_err();
    assert!(
        matches!(
            err,
            AccumulatorError::Overflow {
                field: Field::TotalZatoshis,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(acc, start);
    // Within one transaction's own outputs, too.
    let mut acc = Accumulator::new();
    let err = acc
        .add_transaction(B, &[p2pkh(u64::MAX, 1), p2pkh(1, 2)])
        .unwrap_err();
    assert!(err.to_string().contains("total_zatoshis"), "{err}");
    assert_eq!(acc, Accumulator::new());
}

#[test]
fn underflow_names_the_field_and_changes_nothing() {
    let mut acc = Accumulator::new();
    acc.add_transaction(A, &[p2pkh(5, 1)]).unwrap();
    let start = acc;
    // Spending an output whose value is larger than the whole set's.
    let err = acc.spend_outputs(A, 1, &[(0, p2pkh(10, 1))]).unwrap_err();
    assert!(
        matches!(
            err,
            AccumulatorError::Underflow {
                field: Field::TotalZatoshis,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("underflow in total_zatoshis"),
        "{err}"
    );
    assert_eq!(acc, start);

    // The count fields cannot underflow past the consistency checks: a removal of more
    // outputs than exist is rejected as inconsistent before any arithmetic.
    let err = acc.spend_outputs(B, 1, &[(0, p2pkh(1, 2))]).unwrap_err();
    assert!(
        matches!(err, AccumulatorError::InconsistentDelta { .. }),
        "{err}"
    );
    let mut empty = Accumulator::new();
    let err = empty.spend_outputs(B, 0, &[(0, p2pkh(1, 2))]).unwrap_err();
    assert!(
        matches!(err, AccumulatorError::InconsistentDelta { .. }),
        "{err}"
    );
    assert_eq!(empty, Accumulator::new());
}

#[test]
fn misuse_is_an_error() {
    let mut acc = Accumulator::new();
    acc.add_transaction(A, &[p2pkh(1, 1), p2pkh(2, 2)]).unwrap();
    let start = acc;

    // Removing more than the transaction had.
    let err = acc
        .spend_outputs(A, 1, &[(0, p2pkh(1, 1)), (1, p2pkh(2, 2))])
        .unwrap_err();
    assert!(
        matches!(err, AccumulatorError::InconsistentDelta { .. }),
        "{err}"
    );

    // Claiming more unspent outputs than the whole set has.
    let err = acc.spend_outputs(A, 3, &[(0, p2pkh(1, 1))]).unwrap_err();
    assert!(
        matches!(err, AccumulatorError::InconsistentDelta { .. }),
        "{err}"
    );

    // The same output twice.
    let err = acc
        .unspend_outputs(
            B,
            0,
            &[(3, p2pkh(1, 1)), (1, p2pkh(1, 1)), (3, p2pkh(1, 1))],
        )
        .unwrap_err();
    assert!(
        matches!(err, AccumulatorError::DuplicateOutput { vout: 3, .. }),
        "{err}"
    );

    // A lie that leaves the counters contradicting each other: spending one of A's two
    // outputs while claiming it was A's last takes `transactions` to 0 with one output left.
    let err = acc.spend_outputs(A, 1, &[(0, p2pkh(1, 1))]).unwrap_err();
    assert!(
        matches!(err, AccumulatorError::InconsistentDelta { .. }),
        "{err}"
    );

    // Every rejected call left the accumulator as it was.
    assert_eq!(acc, start);
}

#[test]
fn spending_an_unspent_never_added_output_is_caught_when_the_set_empties() {
    // The hash of the empty set is zero: removing a different output than was added
    // leaves a non-zero hash with no outputs, which is rejected.
    let mut acc = Accumulator::new();
    acc.add_transaction(A, &[p2pkh(1, 1)]).unwrap();
    let err = acc.spend_outputs(A, 1, &[(0, p2pkh(1, 9))]).unwrap_err();
    assert!(
        matches!(err, AccumulatorError::InconsistentDelta { .. }),
        "{err}"
    );
}
