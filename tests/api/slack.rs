//! Slack, against a fake Slack Web API served by wiremock: a stateful responder that keeps
//! channels, members, messages, pins and bookmarks the way Slack does, records every request for
//! exact assertions, and can be told to misbehave per method.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

pub const TOKEN: &str = "xoxb-test-token-1";
const BOT: &str = "UBOT0001";
pub const CENTRAL: &str = "C0CENTRAL1";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub api: String,
    pub auth: Option<String>,
    pub content_type: Option<String>,
    pub query: BTreeMap<String, String>,
    pub body: Value,
}

/// A misbehaviour for the next call of one method.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Do the work, then answer only after this long (the caller gives up first: a crash after
    /// Slack acted).
    ActThenHang(Duration),
    /// Answer this HTTP status with these headers, doing nothing.
    Http(u16, Vec<(&'static str, &'static str)>),
    /// Answer `{ok:false, error}` (and `needed` for missing_scope).
    Error(&'static str),
    /// Answer 200 with a body that is not JSON.
    Garbage,
}

#[derive(Debug, Default)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub members: Vec<String>,
    pub archived: bool,
    pub pins: Vec<String>,
    pub bookmarks: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub blocks: Value,
    pub key: Option<String>,
    pub edits: u32,
}

#[derive(Default)]
pub struct State {
    pub seen: Vec<Seen>,
    pub channels: Vec<Channel>,
    pub messages: Vec<Message>,
    pub users: HashMap<String, String>,
    pub faults: HashMap<String, VecDeque<Fault>>,
    /// Every answer waits this long (a vendor far away).
    pub delay: Duration,
    counter: u64,
}

impl State {
    fn channel(&mut self, id: &str) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.id == id)
    }
}

#[derive(Clone)]
pub struct FakeSlack(pub Arc<Mutex<State>>);

fn ok(v: Value) -> ResponseTemplate {
    let mut v = v;
    v["ok"] = json!(true);
    ResponseTemplate::new(200).set_body_json(v)
}

fn fail(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": code}))
}

impl Respond for FakeSlack {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let api = req.url.path().trim_start_matches("/api/").to_string();
        let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let query: BTreeMap<String, String> = req.url.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        let body: Value = if req.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&req.body).unwrap_or(Value::Null)
        };
        st.seen.push(Seen {
            method: req.method.to_string(),
            api: api.clone(),
            auth: header("authorization"),
            content_type: header("content-type"),
            query: query.clone(),
            body: body.clone(),
        });
        if header("authorization").as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return fail("invalid_auth");
        }
        let fault = st.faults.get_mut(&api).and_then(VecDeque::pop_front);
        let mut hang = None;
        match fault {
            Some(Fault::Http(code, headers)) => {
                let mut t = ResponseTemplate::new(code).set_body_string("slow down");
                for (k, v) in headers {
                    t = t.insert_header(k, v);
                }
                return t;
            }
            Some(Fault::Error(code)) => {
                let mut v = json!({"ok": false, "error": code});
                if code == "missing_scope" {
                    v["needed"] = json!("chat:write");
                    v["provided"] = json!("channels:manage");
                }
                return ResponseTemplate::new(200).set_body_json(v);
            }
            Some(Fault::Garbage) => return ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            Some(Fault::ActThenHang(d)) => hang = Some(d),
            None => {}
        }
        let arg = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| query.get(k).cloned())
        };
        st.counter += 1;
        let n = st.counter;
        let answer = match api.as_str() {
            "auth.test" => {
                ok(json!({"user_id": BOT, "user": "redbutton", "team": "Acme", "url": "https://acme.slack.com/"}))
                    .insert_header("x-oauth-scopes", "chat:write,channels:manage")
            }
            "conversations.create" => {
                let name = arg("name").unwrap_or_default();
                if st.channels.iter().any(|c| c.name == name) {
                    fail("name_taken")
                } else {
                    let id = format!("C{n:08}");
                    st.channels.push(Channel {
                        id: id.clone(),
                        name: name.clone(),
                        members: vec![BOT.into()],
                        ..Default::default()
                    });
                    ok(json!({"channel": {"id": id, "name": name, "creator": BOT}}))
                }
            }
            "conversations.list" => {
                let list: Vec<Value> = st
                    .channels
                    .iter()
                    .filter(|c| !c.archived)
                    .map(|c| json!({"id": c.id, "name": c.name, "creator": if c.name.starts_with("taken") { "UOTHER" } else { BOT }}))
                    .collect();
                ok(json!({"channels": list, "response_metadata": {"next_cursor": ""}}))
            }
            "users.lookupByEmail" => match st.users.get(&arg("email").unwrap_or_default()) {
                Some(id) => ok(json!({"user": {"id": id}})),
                None => fail("users_not_found"),
            },
            "conversations.invite" => {
                let channel = arg("channel").unwrap_or_default();
                let users: Vec<String> = arg("users")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_string)
                    .collect();
                match st.channel(&channel) {
                    None => fail("channel_not_found"),
                    Some(c) if users.iter().all(|u| c.members.contains(u)) => fail("already_in_channel"),
                    Some(c) => {
                        for u in users {
                            if !c.members.contains(&u) {
                                c.members.push(u);
                            }
                        }
                        ok(json!({"channel": {"id": channel}}))
                    }
                }
            }
            "conversations.setTopic" => {
                let channel = arg("channel").unwrap_or_default();
                let topic = arg("topic").unwrap_or_default();
                match st.channel(&channel) {
                    None => fail("channel_not_found"),
                    Some(c) => {
                        c.topic = topic;
                        ok(json!({"channel": {"id": channel}}))
                    }
                }
            }
            "chat.postMessage" => {
                let channel = arg("channel").unwrap_or_default();
                if channel != CENTRAL && st.channel(&channel).is_none() {
                    fail("channel_not_found")
                } else if st.channel(&channel).is_some_and(|c| c.archived) {
                    fail("is_archived")
                } else {
                    let ts = format!("1700000000.{n:06}");
                    st.messages.push(Message {
                        channel: channel.clone(),
                        ts: ts.clone(),
                        text: arg("text").unwrap_or_default(),
                        blocks: body["blocks"].clone(),
                        key: body
                            .pointer("/metadata/event_payload/key")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        edits: 0,
                    });
                    ok(json!({"channel": channel, "ts": ts, "message": {"ts": ts}}))
                }
            }
            "chat.update" => {
                let (channel, ts) = (arg("channel").unwrap_or_default(), arg("ts").unwrap_or_default());
                match st.messages.iter_mut().find(|m| m.channel == channel && m.ts == ts) {
                    None => fail("message_not_found"),
                    Some(m) => {
                        m.text = body["text"].as_str().unwrap_or_default().to_string();
                        m.blocks = body["blocks"].clone();
                        m.edits += 1;
                        ok(json!({"channel": channel, "ts": ts}))
                    }
                }
            }
            "conversations.history" => {
                let channel = arg("channel").unwrap_or_default();
                let msgs: Vec<Value> = st
                    .messages
                    .iter()
                    .filter(|m| m.channel == channel)
                    .rev()
                    .map(|m| {
                        let mut v = json!({"ts": m.ts, "text": m.text});
                        if let Some(k) = &m.key
                            && query.get("include_all_metadata").map(String::as_str) == Some("true")
                        {
                            v["metadata"] = json!({"event_type": "redbutton_post", "event_payload": {"key": k}});
                        }
                        v
                    })
                    .collect();
                ok(json!({"messages": msgs}))
            }
            "pins.add" => {
                let channel = arg("channel").unwrap_or_default();
                let ts = arg("timestamp").unwrap_or_default();
                match st.channel(&channel) {
                    None => fail("channel_not_found"),
                    Some(c) if c.pins.contains(&ts) => fail("already_pinned"),
                    Some(c) => {
                        c.pins.push(ts);
                        ok(json!({}))
                    }
                }
            }
            "bookmarks.add" => {
                let channel = arg("channel_id").unwrap_or_default();
                let link = arg("link").unwrap_or_default();
                let title = arg("title").unwrap_or_default();
                match st.channel(&channel) {
                    None => fail("channel_not_found"),
                    Some(c) => {
                        c.bookmarks.push((title, link.clone()));
                        ok(json!({"bookmark": {"id": format!("Bk{n:06}"), "link": link}}))
                    }
                }
            }
            "bookmarks.list" => {
                let channel = arg("channel_id").unwrap_or_default();
                let list: Vec<Value> = st
                    .channel(&channel)
                    .map(|c| {
                        c.bookmarks
                            .iter()
                            .enumerate()
                            .map(|(i, (t, l))| json!({"id": format!("Bk{i}"), "title": t, "link": l}))
                            .collect()
                    })
                    .unwrap_or_default();
                ok(json!({"bookmarks": list}))
            }
            "conversations.archive" => {
                let channel = arg("channel").unwrap_or_default();
                match st.channel(&channel) {
                    None => fail("channel_not_found"),
                    Some(c) if c.archived => fail("already_archived"),
                    Some(c) => {
                        c.archived = true;
                        ok(json!({}))
                    }
                }
            }
            _ => fail("unknown_method"),
        };
        match hang {
            Some(d) => answer.set_delay(d),
            None => answer.set_delay(st.delay),
        }
    }
}

/// A channel as tests look at it: id, name, members, topic, pins, bookmarks, archived.
pub type ChannelView = (String, String, Vec<String>, String, usize, usize, bool);

pub struct SlackWorld {
    pub server: MockServer,
    pub fake: FakeSlack,
}

impl SlackWorld {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let fake = FakeSlack(Arc::new(Mutex::new(State::default())));
        {
            let mut st = fake.0.lock().unwrap();
            st.users.insert("ada@example.com".into(), "UADA0001".into());
            st.users.insert("grace@example.com".into(), "UGRACE01".into());
            st.users.insert("oncall@example.com".into(), "UONCALL1".into());
        }
        Mock::given(path_regex("^/api/.+"))
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        SlackWorld { server, fake }
    }

    pub fn settings(&self) -> redbutton::notifiers::slack::SlackSettings {
        toml::from_str(&format!(
            "base_url = \"{}/api\"\ntoken_env = \"TEST_SLACK_TOKEN\"\nannounce_channel = \"{CENTRAL}\"\n",
            self.server.uri()
        ))
        .unwrap()
    }

    pub fn spawn(&self, db: &TestDb) -> Spawn {
        let mut spawn = Spawn::new(db);
        spawn.settings.integrations.slack = Some(self.settings());
        spawn
            .settings
            .secret_values
            .insert("TEST_SLACK_TOKEN".into(), TOKEN.into());
        let mut checkout = service("checkout", "Checkout", &[]);
        checkout.responders = vec!["oncall@example.com".into(), "nobody@example.com".into()];
        checkout.conference_url = Some("https://meet.example.com/checkout".into());
        spawn.settings.services = vec![checkout];
        spawn
    }

    /// Like [`Self::spawn`], with channels archived as soon as the incident resolves.
    pub fn spawn_archiving_at_once(&self, db: &TestDb) -> Spawn {
        let mut spawn = self.spawn(db);
        if let Some(slack) = spawn.settings.integrations.slack.as_mut() {
            slack.archive_after_minutes = Some(0);
        }
        spawn
    }

    pub fn fault(&self, api: &str, fault: Fault) {
        self.fake
            .0
            .lock()
            .unwrap()
            .faults
            .entry(api.into())
            .or_default()
            .push_back(fault);
    }

    pub fn seen(&self, api: &str) -> Vec<Seen> {
        self.fake
            .0
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.api == api)
            .cloned()
            .collect()
    }

    pub fn channels(&self) -> Vec<ChannelView> {
        let st = self.fake.0.lock().unwrap();
        st.channels
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.name.clone(),
                    c.members.clone(),
                    c.topic.clone(),
                    c.pins.len(),
                    c.bookmarks.len(),
                    c.archived,
                )
            })
            .collect()
    }

    pub fn messages(&self, channel: &str) -> Vec<Message> {
        self.fake
            .0
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }
}

async fn declare_checkout(app: &TestApp, title: &str) -> i64 {
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", title),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("summary", "Declines at **40%** <b>now</b>"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    number_from_location(&r)
}

#[tokio::test]
async fn declaring_opens_a_channel_invites_posts_pins_bookmarks_and_announces_exactly_as_slack_expects() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    let n = declare_checkout(&app, "Card payments failing!").await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows.len(), 1);
    let url = format!("{}/incidents/{n}", app.address);

    // Every call: bearer token; JSON bodies say so, reads are GETs with a query.
    for s in world.fake.0.lock().unwrap().seen.iter() {
        assert_eq!(s.auth.as_deref(), Some(&*format!("Bearer {TOKEN}")), "{}", s.api);
        if s.method == "POST" {
            assert_eq!(
                s.content_type.as_deref(),
                Some("application/json; charset=utf-8"),
                "{}",
                s.api
            );
        } else {
            assert_eq!(s.method, "GET", "{}", s.api);
        }
    }
    let create = world.seen("conversations.create");
    assert_eq!(create.len(), 1);
    let name = format!("inc-{n}-card-payments-failing");
    assert_eq!(create[0].body, json!({"name": name, "is_private": false}));
    let channels = world.channels();
    assert_eq!(channels.len(), 1);
    let (cid, cname, members, topic, pins, bookmarks, archived) = channels[0].clone();
    assert_eq!(cname, name);
    assert!(!archived);

    // Declarer and the service's responders looked up by email; unknown people skipped.
    let mut looked: Vec<String> = world
        .seen("users.lookupByEmail")
        .iter()
        .map(|s| s.query["email"].clone())
        .collect();
    looked.sort();
    assert_eq!(
        looked,
        vec!["ada@example.com", "nobody@example.com", "oncall@example.com"]
    );
    let invite = world.seen("conversations.invite");
    assert_eq!(invite.len(), 1);
    assert_eq!(
        invite[0].body,
        json!({"channel": cid, "users": "UADA0001,UONCALL1", "force": true})
    );
    assert_eq!(members, vec![BOT, "UADA0001", "UONCALL1"]);

    assert_eq!(
        topic,
        format!("SEV1 \u{b7} Investigating \u{b7} Lead: nobody yet \u{b7} {url}")
    );

    // The summary: Block Kit plus fallback text, our key in metadata, pinned.
    let posts = world.seen("chat.postMessage");
    assert_eq!(posts.len(), 2, "summary and announcement");
    let summary = posts.iter().find(|p| p.body["channel"] == json!(cid)).unwrap();
    let b = &summary.body;
    assert_eq!(b["unfurl_links"], json!(false));
    assert!(
        b["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("INC-{n}: Card payments failing! (SEV1, Investigating)"))
    );
    assert!(b["text"].as_str().unwrap().contains(&url));
    assert_eq!(
        b["metadata"],
        json!({"event_type": "redbutton_post", "event_payload": {"key": format!("inc-{n}-t1-slack-summary")}})
    );
    let blocks = b["blocks"].as_array().unwrap();
    assert_eq!(
        blocks[0],
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("INC-{n}: Card payments failing!")}})
    );
    assert_eq!(
        blocks[1]["fields"][0],
        json!({"type": "mrkdwn", "text": "*Severity*\nSEV1"})
    );
    assert_eq!(
        blocks[1]["fields"][3],
        json!({"type": "mrkdwn", "text": "*Services*\ncheckout"})
    );
    assert_eq!(
        blocks[2]["text"]["text"],
        json!("Declines at **40%** &lt;b&gt;now&lt;/b&gt;"),
        "escaped"
    );
    let buttons = blocks[4]["elements"].as_array().unwrap();
    assert_eq!(buttons[0]["url"], json!(url));
    assert_eq!(buttons[1]["url"], json!("https://meet.example.com/checkout"));
    let summary_msg = world.messages(&cid);
    assert_eq!(summary_msg.len(), 1);
    assert_eq!(pins, 1);
    assert_eq!(
        world.seen("pins.add")[0].body,
        json!({"channel": cid, "timestamp": summary_msg[0].ts})
    );

    // Bookmarks: the incident page and the bridge.
    assert_eq!(bookmarks, 2);
    let mut marks: Vec<Value> = world.seen("bookmarks.add").into_iter().map(|s| s.body).collect();
    marks.sort_by_key(|v| v["title"].as_str().unwrap().to_string());
    assert_eq!(
        marks,
        vec![
            json!({"channel_id": cid, "title": format!("INC-{n} in Big Red Button"), "type": "link", "link": url, "emoji": ":rotating_light:"}),
            json!({"channel_id": cid, "title": "Incident call", "type": "link", "link": "https://meet.example.com/checkout", "emoji": ":telephone_receiver:"}),
        ]
    );

    // The announcement in the central channel links the incident and the channel.
    let central = world.messages(CENTRAL);
    assert_eq!(central.len(), 1);
    let text = central[0].blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("<{url}|INC-{n}: Card payments failing!>")),
        "{text}"
    );
    assert!(text.contains(&format!("<#{cid}>")), "{text}");

    // The incident page links the channel.
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(html.contains(&format!("https://slack.com/app_redirect?channel={cid}")));
    let links = texts(&html, "#links li");
    assert!(
        links
            .iter()
            .any(|l| l.contains("Slack channel") && l.contains(&format!("#{name}"))),
        "{links:?}"
    );
    assert!(links.iter().any(|l| l.contains("Join the incident call")), "{links:?}");
    let targets = texts(&html, "#deliveries .target");
    assert_eq!(targets, vec![format!("#{name}, announced in {CENTRAL}")]);
    app.stop().await;
}

#[tokio::test]
async fn changes_post_in_the_channel_update_topic_and_announcement_and_resolve_closes_and_archives() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn_archiving_at_once(&db)).await;
    let n = declare_checkout(&app, "Checkout down").await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let cid = world.channels()[0].0.clone();
    let csrf = app.csrf().await;
    let base = format!("/incidents/{n}");
    app.change_severity(n, "SEV1", "SEV0").await;
    let r = app
        .post_form(
            &format!("{base}/lead"),
            &[
                ("csrf", &csrf),
                ("expected", ""),
                ("action", "assign"),
                ("name", "Grace Hopper"),
                ("email", "grace@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.change_status(n, "investigating", "mitigated").await;
    app.change_status(n, "mitigated", "resolved").await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 6, "declare, severity, lead, mitigated, resolved, archive");

    let texts: Vec<String> = world
        .messages(&cid)
        .iter()
        .map(|m| m.blocks[0]["text"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert_eq!(texts[1], "Ada Lovelace changed the severity from SEV1 to SEV0.");
    assert_eq!(
        texts[2],
        "Grace Hopper is now leading the incident (set by Ada Lovelace)."
    );
    assert_eq!(
        texts[3],
        "Ada Lovelace changed the status from Investigating to Mitigated."
    );
    assert!(
        texts[4].starts_with(&format!("Ada Lovelace resolved INC-{n} after 0 min.")),
        "{}",
        texts[4]
    );
    let channel = world.channels()[0].clone();
    assert!(channel.2.contains(&"UGRACE01".to_string()), "new lead invited");
    assert!(
        channel.3.starts_with("SEV0 \u{b7} Resolved \u{b7} Lead: Grace Hopper"),
        "{}",
        channel.3
    );
    assert!(channel.6, "archived after the configured delay");
    let archive = world.seen("conversations.archive");
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].body, json!({"channel": cid}));

    // The announcement is one message, edited in place to the latest state.
    let central = world.messages(CENTRAL);
    assert_eq!(central.len(), 1);
    assert_eq!(central[0].edits, 4);
    let t = central[0].blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        t.starts_with(":large_green_circle:") && t.contains("SEV0 \u{b7} Resolved \u{b7} Lead: Grace Hopper"),
        "{t}"
    );
    let update = world.seen("chat.update").pop().unwrap();
    assert_eq!(update.body["channel"], json!(CENTRAL));
    assert_eq!(update.body["ts"], json!(central[0].ts));
    assert!(update.body["text"].as_str().unwrap().contains("Resolved"));
    app.stop().await;
}

#[tokio::test]
async fn the_channel_is_archived_only_after_its_closing_post_even_when_that_post_was_retried() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn_archiving_at_once(&db)).await;
    let n = declare_checkout(&app, "Archive order").await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    // The closing post fails twice; the archive, due at once, must wait for it.
    world.fault("chat.postMessage", Fault::Http(503, vec![]));
    world.fault("chat.postMessage", Fault::Http(503, vec![]));
    app.change_status(n, "investigating", "resolved").await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 3);
    let channel = world.channels()[0].clone();
    assert!(channel.6, "archived");
    let texts: Vec<String> = world
        .messages(&channel.0)
        .iter()
        .map(|m| m.blocks[0]["text"]["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(texts.last().unwrap().contains("resolved INC-"), "{texts:?}");
    app.stop().await;
}

#[tokio::test]
async fn people_slack_will_not_invite_do_not_hold_up_the_declaration() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    world.fault("conversations.invite", Fault::Error("user_is_restricted"));
    declare_checkout(&app, "Guests around").await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows[0].attempts, 1);
    assert_eq!(world.messages(CENTRAL).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_taken_name_gets_the_next_free_one() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    world.fake.0.lock().unwrap().channels.push(Channel {
        id: "C0TAKEN01".into(),
        name: "inc-1-db-full".into(),
        ..Default::default()
    });
    let n = declare_checkout(&app, "DB full").await;
    assert_eq!(n, 1);
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let names: Vec<String> = world
        .seen("conversations.create")
        .iter()
        .map(|s| s.body["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["inc-1-db-full", "inc-1-db-full-2"]);
    app.stop().await;
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after_then_deliver() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    world.fault("conversations.create", Fault::Http(429, vec![("retry-after", "1")]));
    let started = std::time::Instant::now();
    declare_checkout(&app, "Rate limited").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let error = loop {
        let rows = app.outbox_rows().await;
        if let Some(e) = rows[0].last_error.clone() {
            break e;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        error.contains("rate limiting (HTTP 429); retrying after 1 s"),
        "{error}"
    );
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as told");
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(world.seen("conversations.create").len(), 2);
    assert_eq!(world.channels().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn permanent_slack_errors_are_dead_lettered_and_shown_with_the_missing_scope() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    world.fault("conversations.create", Fault::Error("missing_scope"));
    let n = declare_checkout(&app, "No scope").await;
    let rows = app.wait_outbox(&["dead"], Duration::from_secs(10)).await;
    assert_eq!(rows[0].attempts, 1, "not retried");
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let cells = texts(&html, "#deliveries tbody tr");
    assert!(
        cells[0].contains("missing_scope: the bot token needs the chat:write scope"),
        "{cells:?}"
    );

    // After fixing the app, the retry button finishes the job.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/deliveries/{}/retry", rows[0].id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.wait_outbox(&["done"], Duration::from_secs(10)).await;
    assert_eq!(world.channels().len(), 1);

    for (code, from, to) in [
        ("invalid_auth", "investigating", "identified"),
        ("channel_not_found", "identified", "mitigated"),
    ] {
        world.fault("chat.postMessage", Fault::Error(code));
        app.change_status(n, from, to).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rows = app.wait_outbox(&["done", "dead"], Duration::from_secs(10)).await;
        let last = rows.iter().max_by_key(|r| r.id).unwrap();
        assert_eq!(last.state, "dead", "{code}");
        assert!(last.last_error.as_deref().unwrap().contains(code));
    }
    app.stop().await;
}

#[tokio::test]
async fn server_errors_garbage_and_timeouts_are_retried_and_shown_meanwhile() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let mut spawn = world.spawn(&db);
    spawn.settings.outbox.backoff_base_ms = 600;
    spawn.settings.outbox.backoff_max_ms = 600;
    let app = TestApp::spawn(spawn).await;
    world.fault("conversations.create", Fault::Http(503, vec![]));
    world.fault("conversations.create", Fault::Garbage);
    world.fault("conversations.create", Fault::ActThenHang(Duration::from_secs(30)));
    let n = declare_checkout(&app, "Flaky").await;
    let mut seen_errors = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let html = app.get_html(&format!("/incidents/{n}")).await;
        let row = texts(&html, "#deliveries tbody tr").join(" ");
        for needle in ["HTTP 503", "not the JSON expected", "did not answer in time"] {
            if row.contains(needle) && !seen_errors.contains(&needle) {
                seen_errors.push(needle);
            }
        }
        let rows = app.outbox_rows().await;
        if rows[0].state == "done" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen_errors.len(),
        3,
        "each failure was visible on the page: {seen_errors:?}"
    );
    // The hung create did make a channel; the retry adopted it instead of making a second.
    assert_eq!(world.channels().len(), 1);
    assert_eq!(world.messages(&world.channels()[0].0).len(), 1);
    app.stop().await;
}

/// Slack acts, but we never hear the answer (the delivery is cut off as a crash would): at each
/// step of the declaration in turn. Each run must end with one channel, one summary post, one
/// pin, one announcement.
#[tokio::test]
async fn a_declaration_cut_off_at_each_step_ends_with_one_of_everything() {
    for (api, nth) in [
        ("conversations.create", 1),
        ("conversations.invite", 1),
        ("chat.postMessage", 1),
        ("chat.postMessage", 2),
        ("pins.add", 1),
        ("bookmarks.add", 1),
    ] {
        let world = SlackWorld::start().await;
        let db = TestDb::new();
        let mut spawn = world.spawn(&db);
        spawn.settings.outbox.delivery_timeout_ms = 1_500;
        spawn.settings.outbox.lease_ms = 3_000;
        let app = TestApp::spawn(spawn).await;
        for _ in 1..nth {
            world.fault(api, Fault::ActThenHang(Duration::ZERO));
        }
        world.fault(api, Fault::ActThenHang(Duration::from_secs(10)));
        declare_checkout(&app, "Cut off").await;
        let rows = app.wait_outbox(&["done"], Duration::from_secs(30)).await;
        assert!(rows[0].attempts >= 2, "{api} #{nth}: the first attempt was cut off");
        let channels = world.channels();
        assert_eq!(channels.len(), 1, "{api} #{nth}: one channel");
        let cid = &channels[0].0;
        assert_eq!(world.messages(cid).len(), 1, "{api} #{nth}: one summary post");
        assert_eq!(channels[0].4, 1, "{api} #{nth}: one pin");
        assert_eq!(channels[0].5, 2, "{api} #{nth}: two bookmarks");
        assert_eq!(world.messages(CENTRAL).len(), 1, "{api} #{nth}: one announcement");
        app.stop().await;
    }
}

#[tokio::test]
async fn restarting_the_server_mid_declaration_finishes_it_once() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let mut spawn = world.spawn(&db);
    spawn.settings.outbox.delivery_timeout_ms = 20_000;
    spawn.settings.outbox.lease_ms = 40_000;
    spawn.settings.outbox.shutdown_grace_ms = 100;
    let app = TestApp::spawn(spawn).await;
    world.fault("chat.postMessage", Fault::ActThenHang(Duration::from_secs(30)));
    declare_checkout(&app, "Restarted").await;
    // Wait until Slack has the summary, then stop the server without waiting for the answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while world.seen("chat.postMessage").is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
    // The row is still leased; a new process with a short lease takes it over.
    let mut spawn = world.spawn(&db);
    spawn.settings.outbox.delivery_timeout_ms = 1_000;
    spawn.settings.outbox.lease_ms = 2_000;
    sqlite_or_pg_expire_leases(&spawn).await;
    let app = TestApp::spawn(spawn).await;
    app.wait_outbox(&["done"], Duration::from_secs(30)).await;
    let cid = world.channels()[0].0.clone();
    assert_eq!(world.channels().len(), 1);
    assert_eq!(world.messages(&cid).len(), 1, "one summary");
    assert_eq!(world.messages(CENTRAL).len(), 1, "one announcement");
    app.stop().await;
}

/// Leases written by the stopped process would hold the row for their full length; a crash drill
/// only needs the takeover, so shorten them to now.
async fn sqlite_or_pg_expire_leases(spawn: &Spawn) {
    let url = redbutton::db::DbUrl::parse(&spawn.db_url).unwrap();
    let db = redbutton::db::Db::connect(&url, 1, 1000).unwrap();
    db.run(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE outbox SET lease_until = created_at WHERE state = 'leased'").execute(conn)
    })
    .await
    .unwrap();
}
