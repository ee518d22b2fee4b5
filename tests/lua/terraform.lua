-- terraform: the Go tool's module over the `terraform` CLI, against a fake terraform first on
-- PATH that logs its argv and cwd and prints what terraform prints: init, plan, apply,
-- destroy, output (parsed); failures as error values keeping stderr; a missing argument, a
-- workdir that is not there and a missing terraform said as such. Last, a pipeline written as
-- the Go tool's docs write one: terraform provisions, a dependent task publishes with aws.
local h = require("_helpers")
local fake = require("_fake_cli")
local exec = require("exec")

assert(terraform == require("terraform"), "terraform is the same table as a global and through require")

local fakes = fake.new({
  terraform = [[
if [ -e fail-here ]; then
  printf 'Error: Invalid reference\n\n  on main.tf line 3: a reference to a resource type must be followed by a name.\n' >&2
  exit 1
fi
json=no
for arg in "$@"; do [ "$arg" = -json ] && json=yes; done
case "$1" in
  init) echo "Terraform has been successfully initialized!" ;;
  plan|apply|destroy)
    if [ "$json" = yes ]; then
      echo '{"@level":"info","@message":"Terraform 1.7.5","type":"version","terraform":"1.7.5"}'
      echo '{"@level":"info","@message":"Plan: 1 to add, 0 to change, 0 to destroy.","type":"change_summary","changes":{"add":1,"change":0,"remove":0,"operation":"plan"}}'
    else
      echo "Plan: 1 to add, 0 to change, 0 to destroy."
    fi ;;
  output)
    case "$3" in
      "") cat <<'JSON'
{
  "bucket_name": {
    "sensitive": false,
    "type": "string",
    "value": "my-app-artifacts"
  },
  "subnets": {
    "sensitive": false,
    "type": ["list", "string"],
    "value": ["10.0.1.0/24", "10.0.2.0/24"]
  }
}
JSON
      ;;
      bucket_name) echo '"my-app-artifacts"' ;;
      not_json) echo 'Warning: no outputs found' ;;
      *) printf 'Error: Output "%s" not found\n' "$3" >&2; exit 1 ;;
    esac ;;
esac
]],
  aws = [[
case "$1 $2" in
  "s3 sync") echo "upload: site/index.html to s3://my-app-artifacts/site/index.html" ;;
  "secretsmanager get-secret-value") cat <<'JSON'
{
    "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:deploy/token-a1b2c3",
    "Name": "deploy/token",
    "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
    "SecretString": "s3cr3t \"token\"",
    "VersionStages": ["AWSCURRENT"],
    "CreatedDate": "2024-05-01T10:00:00.000000+00:00"
}
JSON
  ;;
esac
]],
})

local workdir = h.tmpdir()
local infra = workdir .. "/infra dir"
assert(exec.command("mkdir", "-p", infra, workdir .. "/broken") == "")
h.write(workdir .. "/broken/fail-here", "")

fake.task(workdir, fakes.env, function()
  -- init, plan, apply, destroy: the Go module's result, relative workdirs against the task's.
  local init, err = terraform.init({ workdir = "infra dir" })
  assert(err == nil, tostring(err))
  assert(init.success == true and init.exit_code == 0 and init.stderr == "", init.stderr)
  assert(init.stdout == "Terraform has been successfully initialized!\n", init.stdout)
  assert(init.command == "terraform init -input=false -no-color", init.command)

  local plan = assert(terraform.plan({ workdir = "infra dir", out = "plan file's.out" }))
  assert(plan.success and plan.stdout == "Plan: 1 to add, 0 to change, 0 to destroy.\n", plan.stdout)
  assert(plan.command == [[terraform plan -input=false -no-color '-out=plan file'\''s.out']], plan.command)
  assert(plan.events == nil)

  local apply = assert(terraform.apply({ workdir = infra, plan = "plan file's.out", auto_approve = true }))
  assert(apply.success and apply.exit_code == 0)
  local applied_plain = assert(terraform.apply({ workdir = infra }))
  assert(applied_plain.success)
  local destroyed = assert(terraform.destroy({ workdir = infra, auto_approve = true, json = true }))
  assert(#destroyed.events == 2 and destroyed.events[2].changes.add == 1, destroyed.stdout)
  assert(destroyed.events[1].terraform == "1.7.5")

  -- output: the parsed JSON, one output's value or all of them.
  local bucket, out_err = terraform.output({ workdir = "infra dir", name = "bucket_name" })
  assert(out_err == nil and bucket == "my-app-artifacts", tostring(out_err))
  local all = assert(terraform.output({ workdir = "infra dir" }))
  assert(all.bucket_name.value == "my-app-artifacts" and all.bucket_name.sensitive == false)
  assert(all.subnets.value[2] == "10.0.2.0/24" and all.subnets.type[1] == "list")

  fake.expect(fakes.calls(), {
    { infra, "terraform", "init", "-input=false", "-no-color" },
    { infra, "terraform", "plan", "-input=false", "-no-color", "-out=plan file's.out" },
    { infra, "terraform", "apply", "-input=false", "-no-color", "-auto-approve", "plan file's.out" },
    { infra, "terraform", "apply", "-input=false", "-no-color" },
    { infra, "terraform", "destroy", "-json", "-input=false", "-no-color", "-auto-approve" },
    { infra, "terraform", "output", "-json", "bucket_name" },
    { infra, "terraform", "output", "-json" },
  })

  -- A non-zero exit: the result says so, and the error names the command and keeps stderr.
  local failed, failure = terraform.plan({ workdir = "broken", json = true })
  assert(failed.success == false and failed.exit_code == 1 and failed.error == failure)
  assert(failed.stderr:find("Error: Invalid reference", 1, true), failed.stderr)
  assert(failure.kind == "exit" and failure.code == 1 and failure.stderr == failed.stderr)
  assert(tostring(failure):find("terraform.plan: terraform plan -json -input=false -no-color exited with code 1: "
    .. "Error: Invalid reference", 1, true), tostring(failure))
  assert(#failed.events == 0)
  -- output's failure: nil and the error (the Go module's `nil, stderr`), usable as text.
  local missing, missing_err = terraform.output({ workdir = infra, name = "nope" })
  assert(missing == nil and missing_err.stderr == 'Error: Output "nope" not found\n')
  assert(("output failed: " .. missing_err):find([[terraform output -json nope exited with code 1: Error: Output "nope"]], 1,
    true), tostring(missing_err))
  local _, not_json = terraform.output({ workdir = infra, name = "not_json" })
  assert(not_json.kind == "invalid" and tostring(not_json):find("terraform.output: terraform output -json not_json printed "
    .. "no JSON", 1, true), tostring(not_json))
  assert(not_json.stdout == "Warning: no outputs found\n")

  -- A missing or wrong argument: nil and an error value naming the function and the field.
  local none, none_err = terraform.plan({ out = "x" })
  assert(none == nil and none_err.kind == "invalid" and none_err.field == "workdir")
  assert(tostring(none_err) == "terraform.plan: 'workdir' is required", tostring(none_err))
  local _, empty_err = terraform.init({ workdir = "" })
  assert(tostring(empty_err) == "terraform.init: expected a non-empty string for 'workdir', got an empty string",
    tostring(empty_err))
  local _, no_params = terraform.destroy()
  assert(tostring(no_params) == "terraform.destroy: expected a table of parameters, got nil", tostring(no_params))
  local _, bad_out = terraform.plan({ workdir = infra, out = true })
  assert(bad_out.field == "out" and tostring(bad_out) == "terraform.plan: expected a string for 'out', got boolean")
  -- A workdir that is not there: an error value, not a raise.
  local gone, gone_err = terraform.apply({ workdir = "nowhere" })
  assert(gone.success == false and gone_err.kind == "io", tostring(gone_err))
  assert(tostring(gone_err) == "terraform.apply: " .. workdir .. "/nowhere is not a directory", tostring(gone_err))
  fake.expect(fakes.calls(), {
    { workdir .. "/broken", "terraform", "plan", "-json", "-input=false", "-no-color" },
    { infra, "terraform", "output", "-json", "nope" },
    { infra, "terraform", "output", "-json", "not_json" },
  })
  return true
end)

-- Without terraform on PATH: said as such, not as a spawn error.
fake.task(workdir, fake.no_tools(), function()
  local result, err = terraform.init({ workdir = infra })
  assert(result.success == false and result.exit_code == -1 and err.not_found == true and err.kind == "io")
  assert(tostring(err) == "`terraform` is not installed (needed by terraform.init)", tostring(err))
  local value, output_err = terraform.output({ workdir = infra })
  assert(value == nil and tostring(output_err) == "`terraform` is not installed (needed by terraform.output)")
  return true
end)

-- A pipeline as the Go tool's documentation writes one: `provision` runs terraform and hands
-- the bucket it made to `publish`, which syncs the site there with aws and reads a secret.
local ENV = fakes.env
local summary = h.run({
  release = {
    description = "Provision the bucket, then publish the site to it",
    workdir = workdir,
    tasks = {
      {
        name = "provision",
        description = "terraform init, plan, apply; the bucket's name as an output",
        env = ENV,
        command = function()
          local init = terraform.init({ workdir = "infra dir" })
          if not init.success then
            return false, "init failed: " .. init.stderr
          end
          local plan = terraform.plan({ workdir = "infra dir", out = "release.tfplan" })
          if not plan.success then
            return false, "plan failed: " .. plan.stderr
          end
          local apply = terraform.apply({ workdir = "infra dir", plan = "release.tfplan", auto_approve = true })
          if not apply.success then
            return false, "apply failed: " .. apply.stderr
          end
          local bucket, err = terraform.output({ workdir = "infra dir", name = "bucket_name" })
          if not bucket then
            return false, "output failed: " .. err
          end
          log.info("Terraform made bucket " .. bucket)
          return true, "provisioned", { bucket = bucket }
        end,
      },
      {
        name = "publish",
        description = "Sync the site to the bucket; read the deploy token",
        depends_on = "provision",
        env = ENV,
        command = function(_, deps)
          fs.mkdir("site")
          fs.write("site/index.html", "<h1>hello</h1>\n")
          local ok, err = aws.s3.sync({
            source = "site",
            destination = "s3://" .. deps.provision.bucket .. "/site",
            delete = true,
          })
          if not ok then
            return false, "S3 sync failed: " .. err
          end
          local token, secret_err = aws.secretsmanager.get_secret({ secret_id = "deploy/token" })
          if not token then
            return false, "Failed to get secret: " .. secret_err
          end
          return true, "published", { uploaded = ok.stdout, token = token }
        end,
      },
    },
  },
})
local provision, publish = summary.by_group.release.provision, summary.by_group.release.publish
assert(summary.ok, tostring(provision.message) .. " / " .. tostring(publish.message))
assert(provision.outputs.bucket == "my-app-artifacts")
assert(publish.outputs.uploaded == "upload: site/index.html to s3://my-app-artifacts/site/index.html\n")
assert(publish.outputs.token == 's3cr3t "token"', publish.outputs.token)
assert(h.read(workdir .. "/site/index.html") == "<h1>hello</h1>\n")
fake.expect(fakes.calls(), {
  { infra, "terraform", "init", "-input=false", "-no-color" },
  { infra, "terraform", "plan", "-input=false", "-no-color", "-out=release.tfplan" },
  { infra, "terraform", "apply", "-input=false", "-no-color", "-auto-approve", "release.tfplan" },
  { infra, "terraform", "output", "-json", "bucket_name" },
  { workdir, "aws", "s3", "sync", "site", "s3://my-app-artifacts/site", "--delete" },
  { workdir, "aws", "secretsmanager", "get-secret-value", "--secret-id", "deploy/token", "--output", "json" },
})
