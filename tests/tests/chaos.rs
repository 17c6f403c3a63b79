//! The short chaos campaign CI runs (`scripts/chaos --rounds N` runs longer):
//! real processes killed and frozen under load lose no acknowledged
//! transaction, end on one head, and every chain re-verifies.

#[test]
fn a_short_kill_and_pause_campaign_loses_nothing_acknowledged() {
    let report = zsl_tests::chaos::run(&zsl_tests::chaos::ChaosConfig {
        seed: 20_261_202,
        rounds: 6,
        clients: 4,
    });
    println!("{}", report.summary());
    assert!(report.ok(), "{report:#?}");
    assert!(
        report.acknowledged > 0,
        "nothing was acknowledged: {report:#?}"
    );
    assert_eq!(report.rounds, 6);
}
