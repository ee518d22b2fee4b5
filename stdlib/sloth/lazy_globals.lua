--- Stdlib modules the Go tool's pipelines use as globals (each also `require(NAME)`), by global
--- name: the module each loads. The prelude loads one the first time a script names it, so a
--- VM whose pipeline uses none of them does not pay for them. To add a module, add it here.
return {
  aws = "aws",
  docker = "docker",
  gcp = "gcp",
  git = "git",
  pulumi = "pulumi",
  python = "python",
  salt = "salt",
  terraform = "terraform",
}
