//! `net`: each test starts a small HTTP server on 127.0.0.1 port 0 (tests/support/http.rs),
//! runs Lua against it in a real VM (bundled stdlib, native modules; `URL` is the server's
//! address), and checks what the server received. No traffic leaves loopback.

use std::time::Duration;

use sloth_runner::runtime::{Runtime, RuntimeOptions, error};

use crate::support::agent::dead_port;
use crate::support::http::{HttpServer, Reply};
use crate::support::{Test, repo_root};

/// Runs `source` with the globals `globals` (strings), as the Lua spec harness runs a spec.
fn run_lua(source: &str, globals: &[(&str, String)]) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&tokio, async {
        let runtime = Runtime::new(&RuntimeOptions::default()).map_err(|e| error::describe(&e))?;
        let lua = runtime.lua();
        let helpers = repo_root().join("tests/lua/?.lua");
        lua.load(format!("package.path = {:?} .. ';' .. package.path", helpers.display().to_string()))
            .exec()
            .map_err(|e| error::describe(&e))?;
        for (name, value) in globals {
            lua.globals().set(*name, value.as_str()).map_err(|e| error::describe(&e))?;
        }
        let chunk = lua.load(source).set_name("=net test");
        match tokio::time::timeout(Duration::from_secs(60), chunk.call_async::<()>(())).await {
            Ok(result) => result.map_err(|e| error::describe(&e)),
            Err(_) => Err("did not finish within 60s".to_owned()),
        }
    });
    if let Err(message) = outcome {
        panic!("the Lua code failed:\n{message}");
    }
}

#[test]
fn get_returns_body_status_and_every_header_value() {
    let server = HttpServer::start(|_| Reply::Full {
        status: 200,
        headers: vec![
            ("Content-Type", "text/plain".to_owned()),
            ("X-Multi", "one".to_owned()),
            ("X-Multi", "two".to_owned()),
        ],
        body: b"hello\0world".to_vec(),
    });
    run_lua(
        r#"
        assert(require("net") == net)
        local body, status, headers, err = net.http_get(URL .. "/greeting?x=1", { headers = { ["X-Token"] = "abc" } })
        assert(err == nil, tostring(err))
        assert(body == "hello\0world" and status == 200, status)
        assert(headers["content-type"][1] == "text/plain" and #headers["content-type"] == 1)
        assert(#headers["x-multi"] == 2 and headers["x-multi"][1] == "one" and headers["x-multi"][2] == "two")
        assert(headers["X-Multi"] == nil, "names are lowercase")
        "#,
        &[("URL", server.url())],
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!((received[0].method.as_str(), received[0].path.as_str()), ("GET", "/greeting?x=1"));
    assert_eq!(received[0].header("x-token"), ["abc"]);
    assert!(received[0].header("user-agent")[0].starts_with("sloth-runner/"));
}

#[test]
fn post_sends_the_body_and_headers() {
    let server = HttpServer::start(|request| Reply::Full {
        status: 201,
        headers: vec![("Location", "/items/7".to_owned())],
        body: format!("got {} bytes", request.body.len()).into_bytes(),
    });
    run_lua(
        r#"
        -- The Go tool's form: a table of headers.
        local body, status, headers, err = net.http_post(URL .. "/items", '{"name":"x"}',
          { ["Content-Type"] = "application/json", ["X-Count"] = 3 })
        assert(err == nil, tostring(err))
        assert(status == 201 and body == "got 12 bytes" and headers.location[1] == "/items/7", body)
        -- Options: headers (one repeated) and a timeout.
        body, status, headers, err = net.http_post(URL .. "/raw", "a\0b",
          { headers = { ["X-Tag"] = { "red", "blue" } }, timeout = 5 })
        assert(err == nil and status == 201 and body == "got 3 bytes", tostring(err))
        "#,
        &[("URL", server.url())],
    );
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!((received[0].method.as_str(), received[0].path.as_str()), ("POST", "/items"));
    assert_eq!(received[0].body, br#"{"name":"x"}"#);
    assert_eq!(received[0].header("content-type"), ["application/json"]);
    assert_eq!(received[0].header("x-count"), ["3"]);
    assert_eq!(received[1].body, b"a\0b");
    assert_eq!(received[1].header("x-tag"), ["red", "blue"]);
}

#[test]
fn a_404_is_an_answer_to_get_and_post_and_an_error_to_download() {
    let server = HttpServer::start(|_| Reply::status(404, "no such thing"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kept.txt"), "old").expect("write");
    run_lua(
        r#"
        local body, status, headers, err = net.http_get(URL .. "/missing")
        assert(err == nil and status == 404 and body == "no such thing", tostring(err))
        body, status, headers, err = net.http_post(URL .. "/missing", "x")
        assert(err == nil and status == 404, tostring(err))
        local err = net.download(URL .. "/missing", DIR .. "/new.txt")
        assert(err.kind == "failed" and err.status == 404 and err.url == URL .. "/missing", tostring(err))
        assert(tostring(err) == "net.download: " .. URL .. "/missing: status 404", tostring(err))
        assert(not fs.exists(DIR .. "/new.txt"))
        -- A file already at the destination stays as it was.
        err = net.download(URL .. "/missing", DIR .. "/kept.txt")
        assert(err and err.kind == "failed")
        assert(fs.read(DIR .. "/kept.txt") == "old")
        local names = fs.ls(DIR)
        assert(#names == 1 and names[1] == "kept.txt", table.concat(names, ", "))
        "#,
        &[("URL", server.url()), ("DIR", dir.path().display().to_string())],
    );
}

/// Several MiB of bytes that are not all alike.
fn large_body() -> Vec<u8> {
    (0..6 * 1024 * 1024 + 123).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

#[test]
fn a_large_download_arrives_whole_and_replaces_the_destination() {
    let server = HttpServer::start(|_| Reply::ok(large_body()));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.bin"), "an older version").expect("write");
    run_lua(
        r#"
        local err = net.download(URL .. "/big.bin", DIR .. "/big.bin", { timeout = "30s" })
        assert(err == nil, tostring(err))
        local names = fs.ls(DIR)
        assert(#names == 1, table.concat(names, ", "))
        "#,
        &[("URL", server.url()), ("DIR", dir.path().display().to_string())],
    );
    let got = std::fs::read(dir.path().join("big.bin")).expect("the downloaded file");
    assert!(got == large_body(), "the file differs from what was sent ({} bytes)", got.len());
}

#[test]
fn a_download_cut_short_leaves_no_file() {
    // Four MiB announced, one sent, then the connection closed.
    let server = HttpServer::start(|_| {
        let mut reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 4 * 1024 * 1024).into_bytes();
        reply.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        Reply::Raw(reply)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    run_lua(
        r#"
        local err = net.download(URL .. "/file", DIR .. "/file.bin")
        assert(err and err.kind == "lost", tostring(err))
        assert(err.url == URL .. "/file")
        assert(#fs.ls(DIR) == 0, "left behind: " .. table.concat(fs.ls(DIR), ", "))
        -- get reads the same answer and fails the same way, without a body.
        local body, status, headers, err = net.http_get(URL .. "/file")
        assert(body == nil and status == 0 and headers == nil and err.kind == "lost", tostring(err))
        "#,
        &[("URL", server.url()), ("DIR", dir.path().display().to_string())],
    );
}

#[test]
fn a_relative_destination_is_in_the_task_workdir() {
    let server = HttpServer::start(|_| Reply::ok("payload"));
    let test = Test::new().write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  fetch = {
    workdir = "out",
    tasks = {
      { name = "get", command = function()
          local err = net.download(os.getenv("URL") .. "/p", "payload.txt")
          if err then return false, tostring(err) end
          return true
        end },
    },
  },
}
"#,
    );
    let test = test.env("URL", &server.url());
    test.run(&["run", "-f", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("out/payload.txt"), "payload");
}

#[test]
fn a_refused_connection_is_unreachable() {
    let dead = dead_port();
    run_lua(
        r#"
        local body, status, headers, err = net.http_get(URL)
        assert(body == nil and status == 0 and headers == nil, tostring(status))
        assert(err.kind == "unreachable" and err.url == URL, tostring(err))
        assert(tostring(err):find("^net%.http_get: " .. URL:gsub("%p", "%%%0") .. ": cannot connect"), tostring(err))
        local err = net.download(URL, "x.bin")
        assert(err.kind == "unreachable", tostring(err))
        "#,
        &[("URL", format!("http://127.0.0.1:{}/", dead.port))],
    );
}

#[test]
fn a_server_that_never_answers_is_stopped_by_the_timeout() {
    let server = HttpServer::start(|_| Reply::Silent);
    run_lua(
        r#"
        local core = require("sloth.core")
        local started = core.now()
        local body, status, headers, err = net.http_get(URL .. "/slow", { timeout = 1 })
        assert(err and err.kind == "timeout", tostring(err))
        assert(tostring(err) == "net.http_get: " .. URL .. "/slow: timed out after 1.00s", tostring(err))
        assert(core.now() - started < 10, "took " .. (core.now() - started) .. "s")
        "#,
        &[("URL", server.url())],
    );
}

#[test]
fn a_task_timeout_stops_a_call_in_progress() {
    let server = HttpServer::start(|_| Reply::Silent);
    run_lua(
        r#"
        local h = require("_helpers")
        local core = require("sloth.core")
        local started = core.now()
        local summary = h.run({ g = { tasks = {
          { name = "fetch", timeout = "200ms", command = function()
              net.http_get(URL .. "/slow")
              return true
            end },
        } } })
        local result = summary.by_group.g.fetch
        assert(result.status == "failed" and result.message == "timed out after 200ms", result.message)
        assert(core.now() - started < 10, "took " .. (core.now() - started) .. "s")
        "#,
        &[("URL", server.url())],
    );
}

#[test]
fn https_to_a_plain_http_server_fails_cleanly() {
    let server = HttpServer::start(|_| Reply::ok("plain"));
    run_lua(
        r#"
        local body, status, headers, err = net.http_get(URL .. "/", { timeout = 10 })
        assert(body == nil and status == 0, tostring(status))
        assert(err.kind == "unreachable", tostring(err))
        assert(tostring(err):find("TLS", 1, true), tostring(err))
        "#,
        &[("URL", format!("https://127.0.0.1:{}", server.port))],
    );
}

#[test]
fn bad_urls_are_invalid_and_bad_arguments_raise() {
    run_lua(
        r#"
        for _, url in ipairs({ "ftp://127.0.0.1/x", "not a url", "/just/a/path", "http://" }) do
          local body, status, headers, err = net.http_get(url)
          assert(err and err.kind == "invalid" and status == 0, url .. ": " .. tostring(err))
        end
        local err = net.download("file:///etc/passwd", "x")
        assert(err.kind == "invalid" and tostring(err):find("only http and https"), tostring(err))
        -- A password in the URL is not repeated in the error.
        local _, _, _, err = net.http_get("http://user:secret@127.0.0.1:1/x\n")
        assert(err and not tostring(err):find("secret", 1, true), tostring(err))

        local ok, message = pcall(net.http_get, URL_OK, { tmeout = 1 })
        assert(not ok and tostring(message):find("net.http_get: unknown option 'tmeout' (did you mean 'timeout'?)", 1, true), tostring(message))
        ok, message = pcall(net.http_get, nil)
        assert(not ok and tostring(message):find("net.http_get: expected string for 'url', got nil", 1, true), tostring(message))
        ok, message = pcall(net.download, URL_OK, {})
        assert(not ok and tostring(message):find("net.download: expected string for 'dest', got table", 1, true), tostring(message))
        ok, message = pcall(net.http_post, URL_OK, {})
        assert(not ok and tostring(message):find("net.http_post: expected string for 'body', got table", 1, true), tostring(message))
        ok, message = pcall(net.http_get, URL_OK, { timeout = "soon" })
        assert(not ok and tostring(message):find("invalid value for option 'timeout'", 1, true), tostring(message))
        "#,
        &[("URL_OK", "http://127.0.0.1:1/".to_owned())],
    );
}
