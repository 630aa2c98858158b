//! A file larger than one batch (the CLI hands the database 5,000 rows at
//! a time while it reads on; SQLite statements take 500, PostgreSQL ones
//! 10,000) keeps every guarantee: a bad value or a duplicate key in a late
//! batch imports nothing — batches already stored are rolled back — and the
//! error names its line; re-importing the file changes nothing; a change in
//! a late batch updates that row only; a dry run writes nothing. At the
//! store: 25,000 rows in one write (several statements on both backends),
//! then a failing write, then an abort, leave nothing. Both backends.

use crate::common;

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone, Utc};
use common::db::TestDb;
use huifang::domain::facts::{Client, Cny};

/// Data rows in the CLI's files: three batches of 5,000 and a part.
const ROWS: usize = 12_500;

const HEADER: &str = "client_id,name,phone,branch,opened_on,introducer_id,broker_introduced,assets_cny,\
                      yearly_commission_cny,monthly_turnover_cny,last_trade_on\n";

/// A clients file of `ROWS` rows; `edit` may change row `i` (0-based; the
/// file's line is `i + 2`).
fn clients_file(dir: &Path, name: &str, edit: impl Fn(usize, String) -> String) -> PathBuf {
    let mut text = String::from(HEADER);
    for i in 0..ROWS {
        let row = format!(
            "C{i:06},客户{i},139{i:08},B{:02},2026-{:02}-{:02},S{:03},{},{},,,\n",
            i % 20,
            1 + i % 11,
            1 + i % 27,
            i % 200,
            u8::from(i.is_multiple_of(20)),
            i * 10
        );
        text.push_str(&edit(i, row));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `row` (a CSV line) with field `n` (0-based) replaced.
fn with_field(row: &str, n: usize, value: &str) -> String {
    let mut fields: Vec<&str> = row.trim_end().split(',').collect();
    fields[n] = value;
    format!("{}\n", fields.join(","))
}

on_both_backends!(
    a_bad_row_in_a_late_batch_imports_nothing,
    reimporting_a_large_file_changes_nothing,
    store_writes_many_statements_all_or_nothing
);

async fn a_bad_row_in_a_late_batch_imports_nothing(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // data row 11,000 is line 11,001; two batches and more are stored by then
    let bad = clients_file(dir.path(), "bad.csv", |i, row| {
        if i == 10_999 { with_field(&row, 4, "2026-02-30") } else { row }
    });
    let out = db.huifang(&["import", "clients", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 bad value(s), nothing imported"), "{err}");
    assert!(err.contains("line 11001, column opened_on") && err.contains("2026-02-30"), "{err}");
    assert_eq!(
        db.count("SELECT count(*) FROM clients").await,
        0,
        "the batches stored before are rolled back"
    );

    // a key given again 9,000 rows later
    let dup = clients_file(dir.path(), "dup.csv", |i, row| {
        if i == 9_000 { row.replacen("C009000", "C000003", 1) } else { row }
    });
    let out = db.huifang(&["import", "clients", dup.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("line 9002, column client_id") && err.contains("first on line 5"), "{err}");
    assert_eq!(db.count("SELECT count(*) FROM clients").await, 0);

    // every row bad: all counted, the first 50 listed, phones masked
    let all_bad = clients_file(dir.path(), "all_bad.csv", |_, row| row.replacen(",139", ",1x9", 1));
    let out = db.huifang(&["import", "clients", all_bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{ROWS} bad value(s)")), "{err}");
    assert!(err.contains(&format!("and {} more", ROWS - 50)), "{err}");
    assert!(!err.contains("1x900000001"), "phones are masked: {err}");
    assert_eq!(db.count("SELECT count(*) FROM clients").await, 0);
}

async fn reimporting_a_large_file_changes_nothing(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = clients_file(dir.path(), "clients.csv", |_, row| row);
    let path = file.to_str().unwrap();

    let dry = db.ok(&["import", "clients", path, "--dry-run"]);
    assert!(dry.contains(&format!("{ROWS} new, 0 updated, 0 unchanged")), "{dry}");
    assert_eq!(db.count("SELECT count(*) FROM clients").await, 0, "a dry run writes nothing");

    let first = db.ok(&["import", "clients", path]);
    assert!(first.contains(&format!("{ROWS} row(s)")) && first.contains(&format!("{ROWS} new")), "{first}");
    let stamps = db.count("SELECT count(DISTINCT updated_at) FROM clients").await;
    let again = db.ok(&["import", "clients", path]);
    assert!(again.contains(&format!("0 new, 0 updated, {ROWS} unchanged")), "{again}");
    assert_eq!(db.count("SELECT count(*) FROM clients").await, ROWS as i64);
    assert_eq!(db.count("SELECT count(DISTINCT updated_at) FROM clients").await, stamps);

    // one row of the last batch changed, one new row at the end
    let changed = clients_file(dir.path(), "changed.csv", |i, row| match i {
        12_345 => row.replace(",B05,", ",B99,"),
        i if i == ROWS - 1 => format!("{row}N000001,新客户,13900000000,B01,2026-11-20,,0,,,,\n"),
        _ => row,
    });
    let out = db.ok(&["import", "clients", changed.to_str().unwrap()]);
    assert!(out.contains(&format!("1 new, 1 updated, {} unchanged", ROWS - 1)), "{out}");
    let store = db.open_store().await;
    assert_eq!(store.client("C012345").await.unwrap().branch, "B99");
    assert_eq!(store.client("C012344").await.unwrap().branch, "B04");
    store.close().await;
    assert_eq!(db.count("SELECT count(*) FROM clients").await, ROWS as i64 + 1);
}

fn client(i: usize) -> Client {
    Client {
        client_id: format!("K{i:06}"),
        name: format!("客户{i}"),
        phone: format!("139{i:08}"),
        branch: format!("B{:02}", i % 20),
        opened_on: NaiveDate::from_ymd_opt(2025, 1 + (i % 12) as u32, 1 + (i % 28) as u32).unwrap(),
        introducer_id: i.is_multiple_of(3).then(|| format!("S{:03}", i % 200)),
        broker_introduced: i.is_multiple_of(20),
        assets: i.is_multiple_of(2).then(|| Cny(i as i64 * 100)),
        yearly_commission: None,
        monthly_turnover: Some(Cny(-(i as i64))),
        last_trade_on: None,
        id_number: None,
        risk_level: None,
    }
}

async fn store_writes_many_statements_all_or_nothing(db: TestDb) {
    let store = db.open_store().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
    let rows: Vec<Client> = (0..25_000).map(client).collect();

    // stored, then a failing write (the schema refuses an empty id), then abort
    let mut imp = store.begin_import::<Client>(at).await.unwrap();
    imp.write(&rows).await.unwrap();
    assert_eq!(imp.rows(), 25_000);
    let mut broken = client(99_999);
    broken.client_id = String::new();
    assert!(imp.write(&[client(30_000), broken]).await.is_err());
    imp.abort().await;
    assert!(store.clients().await.unwrap().is_empty(), "nothing half-written");

    // in one write (several statements on both backends), then again
    let mut imp = store.begin_import::<Client>(at).await.unwrap();
    imp.write(&rows).await.unwrap();
    let c = imp.finish(false).await.unwrap();
    assert_eq!((c.rows, c.inserted, c.updated, c.unchanged), (25_000, 25_000, 0, 0));
    let mut imp = store.begin_import::<Client>(at).await.unwrap();
    for chunk in rows.chunks(7_000) {
        imp.write(chunk).await.unwrap();
    }
    let c = imp.finish(false).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (0, 0, 25_000));
    let mut stored = store.clients().await.unwrap();
    stored.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    assert_eq!(stored, rows, "every value, NULLs and negative amounts included, reads back as written");
    store.close().await;
}
