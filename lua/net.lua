---@meta net
--- HTTP, as the Go sloth-runner's `net` module had it. Available as the global `net` and
--- through `require("net")`. Only `http://` and `https://` URLs; https trusts the system's
--- certificate store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`); redirects are followed (up to 10);
--- `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured.
---
--- Any answer is an answer: `http_get` and `http_post` return a 404 or a 500 as its body and
--- status, with `err` nil; `err` is for a call that got no answer, and then the call returns
--- `nil, 0, nil, err`. `download` keeps only a whole 2xx body: any other status is an err
--- (`kind` "failed", with `status`), and nothing is written.
---
--- An err is a `sloth.Error` with `url` (a user and password in it left out) that prints as
--- `net.http_get: http://host/path: cannot connect: Connection refused`; its `kind` is
--- "invalid" (a URL that is not http(s), a bad header, a body past 256 MiB), "unreachable"
--- (nothing listens, no such host, TLS failed), "timeout", "lost" (the connection broke before
--- the whole body arrived), "failed" (a status a download refuses, too many redirects), "io"
--- or "no_space" (writing a download; `path`). A wrong argument (a table for the URL, an
--- unknown option) raises instead.
---
--- Time: without `timeout`, a call fails when nothing arrives for 30s (connecting, waiting for
--- the answer, between two reads), however long the whole transfer takes; with `timeout`
--- (seconds, or a duration such as "2m"), the whole call must end within it. A task's own
--- timeout stops a call in progress too. Other tasks run while a call waits.
net = {}

---@class net.Options
---@field headers? table<string, string|number|(string|number)[]> request headers; a list sends the header once per value
---@field timeout? number|string a limit on the whole call (seconds, or "500ms", "10s", "2m"); default: 30s without progress

--- Response headers: each name in lowercase (`headers["content-type"][1]`), with every value
--- it came with, in order (a header sent twice has two).
---@alias net.Headers table<string, string[]>

--- GET `url`. The body is held in memory: one past 256 MiB is an err (use `net.download`).
---@param url string
---@param opts? net.Options
---@return string? body the body's bytes, whatever the status
---@return integer status the HTTP status; 0 when there was no answer
---@return net.Headers? headers
---@return sloth.Error? err
function net.http_get(url, opts) end

--- POST `body` to `url`. The third argument is a table of request headers, as in the Go tool
--- (`{ ["Content-Type"] = "application/json" }`), or options: a table whose keys are all
--- option names (`headers`, `timeout`) is options. No Content-Type is sent unless given.
---@param url string
---@param body string|number the request body's bytes
---@param headers_or_opts? table<string, string|number|(string|number)[]>|net.Options
---@return string? body
---@return integer status
---@return net.Headers? headers
---@return sloth.Error? err
function net.http_post(url, body, headers_or_opts) end

--- GET `url` into the file `dest` (replacing one that is there), streamed to disk. The body
--- goes to a temporary file beside `dest` (`.<name>.<random>.part`), renamed onto `dest` only
--- once all of it arrived: an error, a cut connection or a stopped task leaves no file and
--- `dest` as it was. A relative `dest` is in the task's workdir; its directory must exist.
---@param url string
---@param dest string
---@param opts? net.Options
---@return sloth.Error? err nil once the whole body is at `dest`
function net.download(url, dest, opts) end
