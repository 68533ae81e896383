//! Several replicas on one PostgreSQL database share the outbox without double delivery.

use std::sync::Arc;
use std::time::Duration;

use redbutton::domain::{Actor, DeclarationInput};

use crate::helpers::*;

#[tokio::test]
async fn two_instances_on_one_database_deliver_200_rows_exactly_once() {
    if postgres_url().is_none() {
        eprintln!("TEST_DATABASE_URL is not a PostgreSQL URL: this test needs PostgreSQL and was not run here");
        return;
    }
    let db = TestDb::new();
    let counter = CountingNotifier {
        name: "counter",
        delay: Duration::from_millis(5),
        ..Default::default()
    };
    let spawn = || {
        let mut s = Spawn::new(&db);
        s.notifiers = vec![Arc::new(counter.clone())];
        s.settings.outbox.concurrency = 8;
        route_all_to(&mut s.settings, &["counter"]);
        s
    };
    let a = TestApp::spawn(spawn()).await;
    let b = TestApp::spawn(spawn()).await;
    let actor = Actor {
        name: "Load".into(),
        email: "load@example.com".into(),
    };
    // 200 declarations split across both instances, so both enqueue and both deliver.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let state = if i % 2 == 0 { a.state.clone() } else { b.state.clone() };
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            let input = DeclarationInput {
                title: format!("Replica test {i}"),
                ..Default::default()
            };
            redbutton::services::declare::declare(&state, actor, input, None)
                .await
                .unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().number);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=200).collect::<Vec<_>>());

    let rows = a.wait_outbox(&["done"], Duration::from_secs(60)).await;
    assert_eq!(rows.len(), 200);
    let seen = counter.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 200);
    let dupes: Vec<_> = seen.iter().filter(|(_, c)| **c != 1).collect();
    assert!(dupes.is_empty(), "delivered more than once: {dupes:?}");
    assert!(rows.iter().all(|r| r.attempts == 1));
}
