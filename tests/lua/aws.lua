-- aws: the Go tool's module over the `aws` CLI, in its code's forms (aws.client, :s3():sync,
-- :get_secret) and its docs' (aws.exec, aws.s3.sync, aws.secretsmanager.get_secret), against
-- a fake aws and aws-vault first on PATH that log their argv and cwd and print what aws
-- prints: the exact invocations, aws-vault with a profile, parsed JSON, failures as error
-- values keeping stderr, a chain stopping at a failed sync, missing arguments and CLIs.
local h = require("_helpers")
local fake = require("_fake_cli")

assert(aws == require("aws"), "aws is the same table as a global and through require")

local fakes = fake.new({
  ["aws-vault"] = [[
[ "$1" = exec ] && [ "$3" = -- ] || { echo "aws-vault: unexpected arguments" >&2; exit 2; }
shift 3
exec "$@"
]],
  aws = [[
case "$1 $2" in
  "sts get-caller-identity") cat <<'JSON'
{
    "UserId": "AIDASAMPLEUSERID",
    "Account": "123456789012",
    "Arn": "arn:aws:iam::123456789012:user/deployer"
}
JSON
  ;;
  "s3 ls") printf '2024-05-01 10:00:00 my-app-artifacts\n2024-05-02 11:30:00 my-logs\n' ;;
  "s3 sync")
    case "$4" in
      *denied*) printf 'fatal error: An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access Denied\n' >&2
        exit 1 ;;
    esac
    printf 'upload: %s/app.js to %s/app.js\n' "$3" "$4" ;;
  "secretsmanager get-secret-value")
    case "$4" in
      missing) printf '\nAn error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: Secrets Manager can'"'"'t find the specified secret.\n' >&2
        exit 254 ;;
      binary/key) cat <<'JSON'
{
    "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:binary/key-Xy12Ab",
    "Name": "binary/key",
    "SecretBinary": "c2VjcmV0",
    "VersionStages": ["AWSCURRENT"]
}
JSON
      ;;
      *) cat <<JSON
{
    "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:$4-a1b2c3",
    "Name": "$4",
    "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
    "SecretString": "{\"username\":\"app\",\"password\":\"p@ss word\"}",
    "VersionStages": ["AWSCURRENT"],
    "CreatedDate": "2024-05-01T10:00:00.000000+00:00"
}
JSON
      ;;
    esac ;;
  *) echo "aws: error: argument command: Invalid choice: '$1'" >&2; exit 252 ;;
esac
]],
})

local workdir = h.tmpdir()
h.write(workdir .. "/app.js", "console.log(1)\n")

fake.task(workdir, fakes.env, function()
  -- aws.exec: the docs' result, with the code's `success`, and stdout parsed when it is JSON.
  local who, err = aws.exec({ "sts", "get-caller-identity" })
  assert(err == nil, tostring(err))
  assert(who.exit_code == 0 and who.success == true and who.stderr == "")
  assert(who.json.Account == "123456789012" and who.stdout:find('"Arn"', 1, true))
  -- With a profile: through aws-vault; "" is no profile, as the Go examples use it.
  local listed = assert(aws.exec({ "s3", "ls" }, { profile = "prod admin" }))
  assert(listed.json == nil and listed.stdout:find("my-logs", 1, true))
  assert(listed.command == "aws-vault exec 'prod admin' -- aws s3 ls", listed.command)
  assert(assert(aws.exec({ "sts", "get-caller-identity" }, { profile = "" })).success)
  fake.expect(fakes.calls(), {
    { workdir, "aws", "sts", "get-caller-identity" },
    { workdir, "aws-vault", "exec", "prod admin", "--", "aws", "s3", "ls" },
    { workdir, "aws", "s3", "ls" },
    { workdir, "aws", "sts", "get-caller-identity" },
  })

  -- A non-zero exit: the result (exit_code, stderr) and an error naming the command.
  local bad, bad_err = aws.exec({ "nosuch", "it's" })
  assert(bad.success == false and bad.exit_code == 252 and bad.error == bad_err)
  assert(bad_err.kind == "exit" and bad_err.code == 252 and bad_err.stderr:find("Invalid choice: 'nosuch'", 1, true))
  assert(tostring(bad_err) == [[aws.exec: aws nosuch 'it'\''s' exited with code 252: aws: error: argument command: ]]
    .. "Invalid choice: 'nosuch'", tostring(bad_err))

  -- The docs' helpers: s3.sync (the result, truthy) and secretsmanager.get_secret (the string).
  local synced, sync_err = aws.s3.sync({ source = ".", destination = "s3://my-app-artifacts/static files", delete = true,
    profile = "deploy" })
  assert(sync_err == nil and synced.success, tostring(sync_err))
  assert(synced.stdout == "upload: ./app.js to s3://my-app-artifacts/static files/app.js\n", synced.stdout)
  local secret, secret_err = aws.secretsmanager.get_secret({ secret_id = "prod/db" })
  assert(secret_err == nil, tostring(secret_err))
  assert(secret == '{"username":"app","password":"p@ss word"}', secret)
  local creds = data.parse_json(secret)
  assert(creds.password == "p@ss word")
  fake.expect(fakes.calls(), {
    { workdir, "aws", "nosuch", "it's" },
    { workdir, "aws-vault", "exec", "deploy", "--", "aws", "s3", "sync", ".", "s3://my-app-artifacts/static files",
      "--delete" },
    { workdir, "aws", "s3", "sync", ".", "s3://my-app-artifacts/static files", "--delete" },
    { workdir, "aws", "secretsmanager", "get-secret-value", "--secret-id", "prod/db", "--output", "json" },
  })
  -- Their failures: nil and the error (so the docs' `if not ok` sees them), usable as text.
  local ok, denied = aws.s3.sync({ from = "dist", to = "s3://denied-bucket" })
  assert(ok == nil and denied.kind == "exit" and denied.code == 1)
  assert(("S3 sync failed: " .. denied):find("S3 sync failed: aws.s3.sync: aws s3 sync dist s3://denied-bucket exited "
    .. "with code 1: fatal error: An error occurred (AccessDenied)", 1, true), tostring(denied))
  local none, missing = aws.secretsmanager.get_secret({ secret_id = "missing", profile = "prod" })
  assert(none == nil and missing.code == 254 and missing.stderr:find("ResourceNotFoundException", 1, true))
  assert(tostring(missing):find("aws.secretsmanager.get_secret: aws-vault exec prod -- aws secretsmanager "
    .. "get-secret-value --secret-id missing --output json exited with code 254: An error occurred", 1, true),
    tostring(missing))
  local _, binary = aws.secretsmanager.get_secret({ secret_id = "binary/key" })
  assert(binary.kind == "invalid" and binary.stdout:find("SecretBinary", 1, true))
  assert(tostring(binary) == "aws.secretsmanager.get_secret: aws secretsmanager get-secret-value --secret-id binary/key "
    .. "--output json returned no SecretString (a binary secret?)", tostring(binary))
  fakes.calls()

  -- The code's client: :s3():sync chains and returns the S3 object; :get_secret the string.
  local client = assert(aws.client({ profile = "staging" }))
  local s3 = client:s3()
  local chained, chain_err = s3:sync({ from = ".", to = "s3://bucket/a" }):sync({ source = ".", destination = "s3://bucket/b",
    delete = true })
  assert(chain_err == nil and chained == s3 and s3.success and s3.stdout == "upload: ./app.js to s3://bucket/b/app.js\n")
  assert(client:get_secret("prod/api key") == '{"username":"app","password":"p@ss word"}')
  local plain = assert(aws.client())
  assert(plain.profile == nil and assert(plain:get_secret("x")))
  fake.expect(fakes.calls(), {
    { workdir, "aws-vault", "exec", "staging", "--", "aws", "s3", "sync", ".", "s3://bucket/a" },
    { workdir, "aws", "s3", "sync", ".", "s3://bucket/a" },
    { workdir, "aws-vault", "exec", "staging", "--", "aws", "s3", "sync", ".", "s3://bucket/b", "--delete" },
    { workdir, "aws", "s3", "sync", ".", "s3://bucket/b", "--delete" },
    { workdir, "aws-vault", "exec", "staging", "--", "aws", "secretsmanager", "get-secret-value", "--secret-id",
      "prod/api key", "--output", "json" },
    { workdir, "aws", "secretsmanager", "get-secret-value", "--secret-id", "prod/api key", "--output", "json" },
    { workdir, "aws", "secretsmanager", "get-secret-value", "--secret-id", "x", "--output", "json" },
  })
  -- A failed sync: the failed result and the error; a sync chained on it raises, naming it.
  local failed, failure = s3:sync({ from = ".", to = "s3://denied" })
  assert(failed ~= s3 and failed.success == false and failed.exit_code == 1 and s3.success == false)
  assert(failure.stderr:find("AccessDenied", 1, true) and tostring(failure):find("s3:sync: aws-vault exec staging", 1, true))
  local raised, message = pcall(function() return s3:sync({ from = ".", to = "s3://denied" }):sync({ from = ".", to = "s3://x" }) end)
  assert(not raised and tostring(message):find("aws: cannot call sync: the previous aws call failed: s3:sync: ", 1, true),
    tostring(message))
  local _, secret_failure = client:get_secret("missing")
  assert(secret_failure.code == 254 and tostring(secret_failure):find("client:get_secret: aws-vault exec staging", 1, true))
  fakes.calls()

  -- A missing or wrong argument: nil and an error value naming the function and the field.
  local function invalid(text, field, fn, ...)
    local call_result, call_err = fn(...)
    assert(call_result == nil and call_err.kind == "invalid", tostring(call_err))
    assert(tostring(call_err) == text, tostring(call_err))
    assert(call_err.field == field)
  end
  invalid("aws.exec: expected a non-empty list of strings for 'args', got nil", "args", aws.exec)
  invalid("aws.exec: expected a non-empty list of strings for 'args', got an empty table", "args", aws.exec, {})
  invalid("aws.exec: expected a string for 'args[2]', got table", "args", aws.exec, { "s3", {} })
  invalid("aws.exec: expected a table for 'opts', got string", "opts", aws.exec, { "s3" }, "prod")
  invalid("aws.s3.sync: 'destination' is required", "destination", aws.s3.sync, { source = "." })
  invalid("aws.s3.sync: expected a table of parameters, got nil", nil, aws.s3.sync)
  invalid("aws.secretsmanager.get_secret: 'secret_id' is required", "secret_id", aws.secretsmanager.get_secret, {})
  invalid("aws.secretsmanager.get_secret: expected a string for 'profile', got boolean", "profile",
    aws.secretsmanager.get_secret, { secret_id = "x", profile = true })
  invalid("s3:sync: 'from' is required", "from", s3.sync, s3, { to = "s3://x" })
  invalid("client:get_secret: 'secret_id' is required", "secret_id", client.get_secret, client)
  invalid("aws.client: expected a table for 'opts', got string", "opts", aws.client, "prod")
  fake.expect(fakes.calls(), {})
  return true
end)

-- Without the CLI on PATH: said as such, naming the tool that is missing.
fake.task(workdir, fake.no_tools(), function()
  local result, err = aws.exec({ "sts", "get-caller-identity" })
  assert(result.success == false and result.exit_code == -1 and err.not_found == true)
  assert(tostring(err) == "`aws` is not installed (needed by aws.exec)", tostring(err))
  local _, vault = aws.s3.sync({ source = ".", destination = "s3://b", profile = "prod" })
  assert(tostring(vault) == "`aws-vault` is not installed (needed by aws.s3.sync)", tostring(vault))
  local _, secret = aws.client():get_secret("x")
  assert(tostring(secret) == "`aws` is not installed (needed by client:get_secret)", tostring(secret))
  return true
end)
