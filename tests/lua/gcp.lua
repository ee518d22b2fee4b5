-- gcp: the Go tool's module over `gcloud`, against a fake gcloud first on PATH that logs its
-- argv and cwd and prints what gcloud prints with --format=json: the client chains (compute
-- instances, storage buckets, SQL instances, GKE clusters), service accounts (an existing one
-- a success), gcp.exec; failures as error values keeping stderr, a chain stopping at a failed
-- call, missing arguments and CLI.
local h = require("_helpers")
local fake = require("_fake_cli")

assert(gcp == require("gcp"), "gcp is the same table as a global and through require")

local fakes = fake.new({
  gcloud = [[
project=
if [ "$1" = --project ]; then project=$2; shift 2; fi
if [ "$project" = denied-project ]; then
  printf "ERROR: (gcloud.%s.%s.%s) PERMISSION_DENIED: Permission denied on resource project denied-project.\n" "$1" "$2" "$3" >&2
  exit 1
fi
case "$1 $2 $3" in
  "compute instances list") cat <<'JSON'
[
  {
    "id": "4567890123456789012",
    "name": "web-1",
    "status": "RUNNING",
    "zone": "https://www.googleapis.com/compute/v1/projects/my-project/zones/us-central1-a",
    "machineType": "https://www.googleapis.com/compute/v1/projects/my-project/zones/us-central1-a/machineTypes/e2-medium",
    "networkInterfaces": [{"networkIP": "10.128.0.2", "accessConfigs": [{"natIP": "34.123.45.67"}]}]
  },
  {
    "id": "4567890123456789013",
    "name": "worker-1",
    "status": "TERMINATED",
    "zone": "https://www.googleapis.com/compute/v1/projects/my-project/zones/us-central1-a"
  }
]
JSON
  ;;
  "storage buckets list") echo '[{"name": "my-app-artifacts", "location": "US", "storage_url": "gs://my-app-artifacts/"}]' ;;
  "sql instances list") ;;
  "container clusters list") echo 'Listed 0 items.' ;;
  "iam service-accounts create")
    if [ "$4" = existing-sa ]; then
      printf 'ERROR: (gcloud.iam.service-accounts.create) Resource in projects [%s] is the subject of a conflict: Service account existing-sa already exists within project projects/%s.\n' "$project" "$project" >&2
      exit 1
    fi
    printf '{\n  "email": "%s@%s.iam.gserviceaccount.com",\n  "name": "projects/%s/serviceAccounts/%s@%s.iam.gserviceaccount.com"\n}\n' "$4" "$project" "$project" "$4" "$project"
    printf 'Created service account [%s].\n' "$4" >&2 ;;
  "projects add-iam-policy-binding "*) printf 'Updated IAM policy for project [%s].\n' "$3" >&2
    echo '{"bindings": [{"members": ["serviceAccount:deployer@my-project.iam.gserviceaccount.com"], "role": "roles/storage.admin"}], "etag": "BwYZ", "version": 1}' ;;
  "config list ") printf '[core]\naccount = dev@example.com\nproject = my-project\n' ;;
  *) printf "ERROR: (gcloud) Invalid choice: '%s'.\n" "$1" >&2; exit 2 ;;
esac
]],
})

local workdir = h.tmpdir()

fake.task(workdir, fakes.env, function()
  -- The listings: the Go module's { success, stdout, stderr } and the parsed list as `json`.
  local client = assert(gcp.client({ project = "my-project" }))
  local result, err = client:compute({ zone = "us-central1-a" }):instances():list()
  assert(err == nil, tostring(err))
  assert(result.success and result.exit_code == 0 and result.stdout:find('"web-1"', 1, true))
  assert(#result.json == 2 and result.json[1].name == "web-1" and result.json[2].status == "TERMINATED")
  assert(result.json[1].networkInterfaces[1].accessConfigs[1].natIP == "34.123.45.67")
  local buckets = assert(client:storage():buckets():list())
  assert(buckets.json[1].storage_url == "gs://my-app-artifacts/")
  local sql = assert(client:sql():instances():list())
  assert(sql.success and sql.stdout == "" and next(sql.json) == nil)
  local all_zones = assert(gcp.client():compute():instances():list())
  assert(all_zones.command == "gcloud compute instances list --format=json", all_zones.command)
  fake.expect(fakes.calls(), {
    { workdir, "gcloud", "--project", "my-project", "compute", "instances", "list", "--format=json", "--zones",
      "us-central1-a" },
    { workdir, "gcloud", "--project", "my-project", "storage", "buckets", "list", "--format=json" },
    { workdir, "gcloud", "--project", "my-project", "sql", "instances", "list", "--format=json" },
    { workdir, "gcloud", "compute", "instances", "list", "--format=json" },
  })
  -- Output that is not a JSON list: an error value, the result kept.
  local clusters, not_json = client:gke():clusters():list()
  assert(clusters.stdout == "Listed 0 items.\n" and clusters.json == nil and not_json.kind == "invalid")
  assert(tostring(not_json) == "clusters:list: gcloud --project my-project container clusters list --format=json printed "
    .. "what is not a JSON list", tostring(not_json))
  -- A non-zero exit: the result returned too, the error naming the command and keeping stderr.
  local denied, denied_err = gcp.client({ project = "denied-project" }):storage():buckets():list()
  assert(denied.success == false and denied.exit_code == 1 and denied.error == denied_err)
  assert(denied_err.stderr:find("PERMISSION_DENIED", 1, true))
  assert(tostring(denied_err) == "buckets:list: gcloud --project denied-project storage buckets list --format=json exited "
    .. "with code 1: ERROR: (gcloud.storage.buckets.list) PERMISSION_DENIED: Permission denied on resource project "
    .. "denied-project.", tostring(denied_err))
  fakes.calls()

  -- Service accounts: create (an existing one is a success, as in the Go code) and bind, chained.
  local sa = assert(client:service_account("deployer"))
  assert(sa.email == "deployer@my-project.iam.gserviceaccount.com" and sa.project == "my-project")
  local chained, chain_err = sa:create({ display_name = "Deployer's \"CI\" account" })
    :add_iam_binding({ member = "serviceAccount:" .. sa.email, role = "roles/storage.admin" })
  assert(chain_err == nil and chained == sa, tostring(chain_err))
  assert(sa.json.bindings[1].role == "roles/storage.admin" and sa.stderr == "Updated IAM policy for project [my-project].\n")
  local other = assert(gcp.client():service_account("existing-sa", "other project"))
  local existing, existing_err = other:create()
  assert(existing_err == nil and existing == other and other.success, tostring(existing_err))
  assert(other.stderr:find("already exists", 1, true))
  fake.expect(fakes.calls(), {
    { workdir, "gcloud", "--project", "my-project", "iam", "service-accounts", "create", "deployer", "--display-name",
      [[Deployer's "CI" account]], "--format=json" },
    { workdir, "gcloud", "--project", "my-project", "projects", "add-iam-policy-binding", "my-project", "--member",
      "serviceAccount:deployer@my-project.iam.gserviceaccount.com", "--role", "roles/storage.admin", "--format=json" },
    { workdir, "gcloud", "--project", "other project", "iam", "service-accounts", "create", "existing-sa", "--format=json" },
  })
  -- A failure other than "already exists": the failed result and the error; chaining raises.
  local blocked = assert(gcp.client({ project = "denied-project" }):service_account("ci"))
  local failed, failure = blocked:create()
  assert(failed ~= blocked and failed.success == false and blocked.success == false and failure.code == 1)
  assert(tostring(failure):find("sa:create: gcloud --project denied-project iam service-accounts create ci --format=json "
    .. "exited with code 1: ERROR: (gcloud.iam.service-accounts.create) PERMISSION_DENIED", 1, true), tostring(failure))
  local ok, message = pcall(function()
    return blocked:create():add_iam_binding({ member = "user:a@example.com", role = "roles/viewer" })
  end)
  assert(not ok and tostring(message):find("gcp: cannot call add_iam_binding: the previous gcp call failed: sa:create: ",
    1, true), tostring(message))
  fakes.calls()

  -- gcp.exec: the docs' form, arguments as given; `json` when the output is JSON.
  local listed = assert(gcp.exec({ "compute", "instances", "list", "--project", "my-project", "--zones",
    "us-central1-a,us-central1-b" }))
  assert(listed.exit_code == 0 and listed.json[1].name == "web-1")
  local config = assert(gcp.exec({ "config", "list" }))
  assert(config.json == nil and config.stdout:find("project = my-project", 1, true))
  local bad, bad_err = gcp.exec({ "no such", "thing" })
  assert(bad.exit_code == 2 and bad_err.stderr == "ERROR: (gcloud) Invalid choice: 'no such'.\n")
  assert(tostring(bad_err) == "gcp.exec: gcloud 'no such' thing exited with code 2: ERROR: (gcloud) Invalid choice: "
    .. "'no such'.", tostring(bad_err))
  fake.expect(fakes.calls(), {
    { workdir, "gcloud", "compute", "instances", "list", "--project", "my-project", "--zones", "us-central1-a,us-central1-b" },
    { workdir, "gcloud", "config", "list" },
    { workdir, "gcloud", "no such", "thing" },
  })

  -- A missing or wrong argument: nil and an error value naming the function and the field.
  local function invalid(text, field, fn, ...)
    local call_result, call_err = fn(...)
    assert(call_result == nil and call_err.kind == "invalid", tostring(call_err))
    assert(tostring(call_err) == text, tostring(call_err))
    assert(call_err.field == field)
  end
  local no_project = assert(gcp.client())
  invalid("client:service_account: 'project' is required, in gcp.client{ project } or as client:service_account's second "
    .. "argument", "project", no_project.service_account, no_project, "sa")
  invalid("client:service_account: 'name' is required", "name", client.service_account, client)
  invalid("sa:add_iam_binding: 'role' is required", "role", sa.add_iam_binding, sa, { member = "user:a@example.com" })
  invalid("sa:add_iam_binding: expected a table of parameters, got nil", nil, sa.add_iam_binding, sa)
  invalid("client:compute: expected a string for 'zone', got table", "zone", client.compute, client, { zone = {} })
  invalid("gcp.client: expected a string for 'project', got boolean", "project", gcp.client, { project = true })
  invalid("gcp.exec: expected a non-empty list of strings for 'args', got nil", "args", gcp.exec)
  fake.expect(fakes.calls(), {})
  return true
end)

-- Without gcloud on PATH: said as such, not as a spawn error.
fake.task(workdir, fake.no_tools(), function()
  local result, err = gcp.client({ project = "p" }):compute({ zone = "z" }):instances():list()
  assert(result.success == false and result.exit_code == -1 and err.not_found == true and err.kind == "io")
  assert(tostring(err) == "`gcloud` is not installed (needed by instances:list)", tostring(err))
  local _, exec_err = gcp.exec({ "config", "list" })
  assert(tostring(exec_err) == "`gcloud` is not installed (needed by gcp.exec)", tostring(exec_err))
  return true
end)
