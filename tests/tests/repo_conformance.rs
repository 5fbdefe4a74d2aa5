//! The metadata repository's contract (`storage/src/repo/mod.rs`), checked
//! the same way on each implementation: sled in a temporary directory and
//! PostgreSQL in a throw-away cluster (issue 21). A repository that passes
//! here can stand in for another behind the store.

use clipstream_storage::repo::{
    copy_records, BatchOutcome, Collection, PgRepo, Repo, SledRepo, Step,
};
use clipstream_tests::peers::postgres::Postgres;

/// A repository and what must outlive it (fields drop in order: the
/// repository first, then its directory or server).
struct Subject {
    repo: Box<dyn Repo>,
    _dir: Option<tempfile::TempDir>,
    _server: Option<Postgres>,
}

fn sled() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let repo = SledRepo::open(dir.path(), 1 << 20).unwrap();
    Subject {
        repo: Box::new(repo),
        _dir: Some(dir),
        _server: None,
    }
}

fn postgres() -> Subject {
    let server = Postgres::start();
    let repo = PgRepo::open(&server.url(), 8).unwrap();
    Subject {
        repo: Box::new(repo),
        _dir: None,
        _server: Some(server),
    }
}

/// Each case below, once per repository: `sled::case` and
/// `postgres::case`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sled {
            $( #[test] fn $case() { let subject = super::sled(); super::$case(&*subject.repo); } )*
        }
        mod postgres {
            $( #[test] fn $case() { let subject = super::postgres(); super::$case(&*subject.repo); } )*
        }
    };
}

conformance!(
    a_record_is_put_read_replaced_and_removed,
    collections_are_separate,
    a_batch_whose_requirement_fails_writes_nothing,
    a_batch_that_holds_applies_every_step_and_returns_what_it_replaced,
    scans_keep_to_their_prefix_in_byte_order_whatever_the_keys_hold,
    pages_follow_each_other_without_gaps_or_repeats,
    compare_and_swap_writes_only_over_the_expected_value,
    concurrent_compare_and_swap_loses_no_increment,
    of_concurrent_claims_exactly_one_wins,
);

fn a_record_is_put_read_replaced_and_removed(repo: &dyn Repo) {
    let c = Collection::Assets;
    assert_eq!(repo.get(c, "p/a").unwrap(), None);
    assert!(!repo.contains(c, "p/a").unwrap());
    assert_eq!(repo.insert(c, "p/a", b"one".to_vec()).unwrap(), None);
    assert_eq!(repo.get(c, "p/a").unwrap(), Some(b"one".to_vec()));
    assert!(repo.contains(c, "p/a").unwrap());
    assert_eq!(
        repo.insert(c, "p/a", b"two".to_vec()).unwrap(),
        Some(b"one".to_vec()),
        "an insert returns the value it replaced"
    );
    // Values are bytes, not text: NUL and invalid UTF-8 come back as put.
    let raw = vec![0u8, 0xff, 0xfe, 0, 1];
    repo.insert(c, "p/raw", raw.clone()).unwrap();
    assert_eq!(repo.get(c, "p/raw").unwrap(), Some(raw));
    repo.insert(c, "p/empty", Vec::new()).unwrap();
    assert_eq!(repo.get(c, "p/empty").unwrap(), Some(Vec::new()));
    assert_eq!(repo.count(c).unwrap(), 3);
    assert_eq!(repo.remove(c, "p/a").unwrap(), Some(b"two".to_vec()));
    assert_eq!(repo.remove(c, "p/a").unwrap(), None);
    assert_eq!(repo.get(c, "p/a").unwrap(), None);
    assert_eq!(repo.count(c).unwrap(), 2);
    repo.flush_blocking().unwrap();
}

fn collections_are_separate(repo: &dyn Repo) {
    repo.insert(Collection::Movies, "k", b"movie".to_vec())
        .unwrap();
    repo.insert(Collection::Meta, "k", b"meta".to_vec())
        .unwrap();
    assert_eq!(
        repo.get(Collection::Movies, "k").unwrap(),
        Some(b"movie".to_vec())
    );
    assert_eq!(
        repo.get(Collection::Meta, "k").unwrap(),
        Some(b"meta".to_vec())
    );
    assert_eq!(repo.get(Collection::Assets, "k").unwrap(), None);
    repo.remove(Collection::Movies, "k").unwrap();
    assert!(repo.contains(Collection::Meta, "k").unwrap());
    assert_eq!(repo.count(Collection::Movies).unwrap(), 0);
    assert_eq!(repo.count(Collection::Meta).unwrap(), 1);
}

fn a_batch_whose_requirement_fails_writes_nothing(repo: &dyn Repo) {
    repo.insert(Collection::Projects, "p", b"{}".to_vec())
        .unwrap();
    repo.insert(Collection::Assets, "p/a", b"old".to_vec())
        .unwrap();
    let steps = [
        Step::insert(Collection::Assets, "p/a", b"new".to_vec()),
        Step::remove(Collection::Projects, "p"),
        Step::require_present(Collection::Projects, "q"),
        Step::insert(Collection::Movies, "p/m", b"m".to_vec()),
    ];
    assert_eq!(repo.batch(&steps).unwrap(), BatchOutcome::Unmet(2));
    assert_eq!(
        repo.get(Collection::Assets, "p/a").unwrap(),
        Some(b"old".to_vec())
    );
    assert!(repo.contains(Collection::Projects, "p").unwrap());
    assert!(!repo.contains(Collection::Movies, "p/m").unwrap());

    let absent = [
        Step::insert(Collection::Movies, "p/m", b"m".to_vec()),
        Step::require_absent(Collection::Projects, "p"),
    ];
    assert_eq!(repo.batch(&absent).unwrap(), BatchOutcome::Unmet(1));
    assert!(!repo.contains(Collection::Movies, "p/m").unwrap());
    assert_eq!(repo.batch(&[]).unwrap(), BatchOutcome::Applied(Vec::new()));
}

fn a_batch_that_holds_applies_every_step_and_returns_what_it_replaced(repo: &dyn Repo) {
    repo.insert(Collection::Assets, "p/a", b"old".to_vec())
        .unwrap();
    let steps = [
        Step::require_absent(Collection::Projects, "p"),
        Step::insert(Collection::Projects, "p", b"{}".to_vec()),
        Step::require_present(Collection::Projects, "p"),
        Step::insert(Collection::Assets, "p/a", b"new".to_vec()),
        Step::remove(Collection::Movies, "p/none"),
    ];
    assert_eq!(
        repo.batch(&steps).unwrap(),
        BatchOutcome::Applied(vec![None, None, None, Some(b"old".to_vec()), None]),
        "a requirement sees the writes of the steps before it"
    );
    assert_eq!(
        repo.get(Collection::Assets, "p/a").unwrap(),
        Some(b"new".to_vec())
    );
    assert_eq!(repo.count(Collection::Projects).unwrap(), 1);

    let removal = [
        Step::remove(Collection::Assets, "p/a"),
        Step::require_absent(Collection::Assets, "p/a"),
        Step::insert(Collection::Assets, "p/b", b"b".to_vec()),
    ];
    assert_eq!(
        repo.batch(&removal).unwrap(),
        BatchOutcome::Applied(vec![Some(b"new".to_vec()), None, None])
    );
    assert_eq!(repo.get(Collection::Assets, "p/a").unwrap(), None);
    assert_eq!(
        repo.get(Collection::Assets, "p/b").unwrap(),
        Some(b"b".to_vec())
    );
}

fn keys(rows: Vec<(String, Vec<u8>)>) -> Vec<String> {
    rows.into_iter().map(|(k, _)| k).collect()
}

fn scans_keep_to_their_prefix_in_byte_order_whatever_the_keys_hold(repo: &dyn Repo) {
    // `_` and `%` are LIKE's wildcards; `é` sorts after `z` in byte order
    // (and before it in most locales); `a_b0` follows `a_b/` by one byte.
    let all = [
        "a_b/z", "a_b/1", "aXb/1", "a%b/1", "a_b/é", "a_b0", "a_b/2", "a_", "a_b/", "b", "a_b/%",
        "a_b/_",
    ];
    for key in all {
        repo.insert(Collection::Movies, key, key.as_bytes().to_vec())
            .unwrap();
    }
    repo.insert(Collection::Assets, "a_b/3", Vec::new())
        .unwrap();
    let rows = repo.scan_prefix(Collection::Movies, "a_b/").unwrap();
    assert!(rows.iter().all(|(k, v)| k.as_bytes() == v.as_slice()));
    assert_eq!(
        keys(rows),
        ["a_b/", "a_b/%", "a_b/1", "a_b/2", "a_b/_", "a_b/z", "a_b/é"]
    );
    assert_eq!(
        keys(repo.scan_prefix(Collection::Movies, "a%").unwrap()),
        ["a%b/1"]
    );
    assert_eq!(
        keys(repo.scan_prefix(Collection::Movies, "a_b").unwrap()),
        ["a_b/", "a_b/%", "a_b/1", "a_b/2", "a_b/_", "a_b/z", "a_b/é", "a_b0"]
    );
    assert!(repo
        .scan_prefix(Collection::Movies, "a_c")
        .unwrap()
        .is_empty());
    let mut sorted: Vec<&str> = all.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(
        keys(repo.scan_prefix(Collection::Movies, "").unwrap()),
        sorted,
        "the empty prefix is the whole collection, in byte order"
    );
}

fn pages_follow_each_other_without_gaps_or_repeats(repo: &dyn Repo) {
    for key in ["u/1", "u/2", "u/3", "u/4", "u/5", "u0", "t/9", "u_/1"] {
        repo.insert(Collection::ProjectTokens, key, Vec::new())
            .unwrap();
    }
    let c = Collection::ProjectTokens;
    let first = keys(repo.scan_page(c, "u/", None, 2).unwrap());
    assert_eq!(first, ["u/1", "u/2"]);
    let second = keys(repo.scan_page(c, "u/", Some("u/2"), 2).unwrap());
    assert_eq!(second, ["u/3", "u/4"]);
    let last = keys(repo.scan_page(c, "u/", Some("u/4"), 2).unwrap());
    assert_eq!(last, ["u/5"]);
    assert!(repo.scan_page(c, "u/", Some("u/5"), 2).unwrap().is_empty());
    assert_eq!(
        keys(repo.scan_page(c, "u/", Some("a"), 1).unwrap()),
        ["u/1"],
        "a cursor before the prefix starts at its first record"
    );
    assert_eq!(
        keys(repo.scan_page(c, "u/", Some("u/25"), 10).unwrap()),
        ["u/3", "u/4", "u/5"],
        "a cursor that is not a key starts after where it would sort"
    );
    assert!(repo.scan_page(c, "u/", None, 0).unwrap().is_empty());
}

fn compare_and_swap_writes_only_over_the_expected_value(repo: &dyn Repo) {
    let c = Collection::Meta;
    assert!(
        repo.compare_and_swap(c, "gone", None, None).unwrap(),
        "absent expected and absent wanted holds when the key is absent"
    );
    assert!(repo
        .compare_and_swap(c, "k", None, Some(b"1".to_vec()))
        .unwrap());
    assert!(!repo
        .compare_and_swap(c, "k", None, Some(b"2".to_vec()))
        .unwrap());
    assert!(!repo.compare_and_swap(c, "k", None, None).unwrap());
    assert!(!repo
        .compare_and_swap(c, "k", Some(b"2"), Some(b"3".to_vec()))
        .unwrap());
    assert_eq!(repo.get(c, "k").unwrap(), Some(b"1".to_vec()));
    assert!(repo
        .compare_and_swap(c, "k", Some(b"1"), Some(b"2".to_vec()))
        .unwrap());
    assert_eq!(repo.get(c, "k").unwrap(), Some(b"2".to_vec()));
    assert!(!repo.compare_and_swap(c, "k", Some(b"1"), None).unwrap());
    assert!(repo.compare_and_swap(c, "k", Some(b"2"), None).unwrap());
    assert_eq!(repo.get(c, "k").unwrap(), None);
    assert!(!repo
        .compare_and_swap(c, "k", Some(b"2"), Some(b"3".to_vec()))
        .unwrap());
    assert_eq!(repo.get(c, "k").unwrap(), None);
}

const THREADS: usize = 4;
const INCREMENTS: usize = 25;

fn concurrent_compare_and_swap_loses_no_increment(repo: &dyn Repo) {
    let c = Collection::Meta;
    repo.insert(c, "n", b"0".to_vec()).unwrap();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..INCREMENTS {
                    // Each increment reads, then swaps over what it read;
                    // a lost race reads again. Bounded: every failed swap
                    // means another thread's succeeded.
                    let mut done = false;
                    for _ in 0..THREADS * INCREMENTS * 4 {
                        let old = repo.get(c, "n").unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&old).unwrap().parse().unwrap();
                        let new = (n + 1).to_string().into_bytes();
                        if repo
                            .compare_and_swap(c, "n", Some(&old), Some(new))
                            .unwrap()
                        {
                            done = true;
                            break;
                        }
                    }
                    assert!(done, "an increment kept losing its swap");
                }
            });
        }
    });
    assert_eq!(
        repo.get(c, "n").unwrap(),
        Some((THREADS * INCREMENTS).to_string().into_bytes())
    );
}

fn of_concurrent_claims_exactly_one_wins(repo: &dyn Repo) {
    for round in 0..5 {
        let key = format!("claim/{round}");
        let name = format!("name/{round}");
        let (swaps, batches): (Vec<bool>, Vec<BatchOutcome>) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (key, name) = (&key, &name);
                    s.spawn(move || {
                        let me = t.to_string().into_bytes();
                        let swapped = repo
                            .compare_and_swap(Collection::Jobs, key, None, Some(me.clone()))
                            .unwrap();
                        // A unique-name claim, as projects take their
                        // names: require the name absent, then take it.
                        let batch = repo
                            .batch(&[
                                Step::require_absent(Collection::ProjectNames, name.as_str()),
                                Step::insert(Collection::ProjectNames, name.as_str(), me.clone()),
                                Step::insert(Collection::Projects, format!("{name}/{t}"), me),
                            ])
                            .unwrap();
                        (swapped, batch)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).unzip()
        });
        assert_eq!(swaps.iter().filter(|s| **s).count(), 1, "{swaps:?}");
        let winners: Vec<usize> = batches
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b, BatchOutcome::Applied(_)))
            .map(|(t, _)| t)
            .collect();
        assert_eq!(winners.len(), 1, "{batches:?}");
        assert!(batches
            .iter()
            .all(|b| matches!(b, BatchOutcome::Applied(_) | BatchOutcome::Unmet(0))));
        assert_eq!(
            repo.get(Collection::ProjectNames, &name).unwrap(),
            Some(winners[0].to_string().into_bytes())
        );
        assert_eq!(
            keys(
                repo.scan_prefix(Collection::Projects, &format!("{name}/"))
                    .unwrap()
            ),
            [format!("{name}/{}", winners[0])],
            "the losers wrote nothing"
        );
    }
}

#[test]
fn postgres_repositories_opened_at_once_migrate_once_and_share_records() {
    let server = Postgres::start();
    let url = server.create_database("shared");
    let repos: Vec<PgRepo> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| PgRepo::open(&url, 2).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    repos[0]
        .insert(Collection::Keys, "k", b"v".to_vec())
        .unwrap();
    assert_eq!(
        repos[2].get(Collection::Keys, "k").unwrap(),
        Some(b"v".to_vec())
    );
    drop(repos);
    let again = PgRepo::open(&url, 1).unwrap();
    assert_eq!(
        again.get(Collection::Keys, "k").unwrap(),
        Some(b"v".to_vec()),
        "reopening keeps the records"
    );
}

#[test]
fn a_postgres_repository_that_cannot_connect_is_an_error() {
    let port = clipstream_tests::peers::free_port();
    let url = format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2");
    assert!(PgRepo::open(&url, 1).is_err());
    assert!(PgRepo::open("not a connection string =", 1).is_err());
}

/// Fills `repo` with records in several collections, more than one page
/// of them in one, binary values and the token key's kind of raw value.
fn fill(repo: &dyn Repo) {
    let steps: Vec<Step> = (0..2500)
        .map(|i| {
            Step::insert(
                Collection::Tokens,
                format!("t_{i:05}%"),
                vec![(i % 251) as u8; 3],
            )
        })
        .collect();
    assert!(matches!(
        repo.batch(&steps).unwrap(),
        BatchOutcome::Applied(_)
    ));
    repo.insert(Collection::Meta, "token_key", vec![0, 0xff, 7, 0])
        .unwrap();
    repo.insert(Collection::Projects, "p", b"{}".to_vec())
        .unwrap();
    repo.insert(Collection::Assets, "p/é", Vec::new()).unwrap();
}

fn every_record(repo: &dyn Repo) -> Vec<(Collection, String, Vec<u8>)> {
    Collection::ALL
        .iter()
        .flat_map(|c| {
            repo.scan_prefix(*c, "")
                .unwrap()
                .into_iter()
                .map(move |(k, v)| (*c, k, v))
        })
        .collect()
}

#[test]
fn copying_records_between_repositories_keeps_every_one_and_can_run_again() {
    let (sled, postgres) = (sled(), postgres());
    fill(&*sled.repo);
    let report = copy_records(&*sled.repo, &*postgres.repo, 1000).unwrap();
    let tokens = report
        .iter()
        .find(|c| c.collection == Collection::Tokens)
        .unwrap();
    assert_eq!((tokens.records, tokens.bytes), (2500, 7500));
    assert_eq!(every_record(&*postgres.repo), every_record(&*sled.repo));

    // Stopped half way or not, a copy runs again over what it wrote.
    copy_records(&*sled.repo, &*postgres.repo, 700).unwrap();
    assert_eq!(every_record(&*postgres.repo), every_record(&*sled.repo));

    // And back, into an empty sled.
    let back = self::sled();
    copy_records(&*postgres.repo, &*back.repo, 1000).unwrap();
    assert_eq!(every_record(&*back.repo), every_record(&*sled.repo));

    // A target holding records the source never had is named, not
    // silently kept.
    postgres
        .repo
        .insert(Collection::Movies, "stray/m", Vec::new())
        .unwrap();
    let e = copy_records(&*sled.repo, &*postgres.repo, 1000).unwrap_err();
    assert!(e.to_string().contains("movies"), "{e}");
}
