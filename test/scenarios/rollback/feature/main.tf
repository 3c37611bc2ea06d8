terraform {
  backend "local" {
    path = "__STATE_DIR__/rollback.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "changed"
}

# Fails on every apply: a provisioner that exits 1, on a resource replaced each time.
resource "terraform_data" "b" {
  triggers_replace = "fail"
  provisioner "local-exec" {
    command = "echo 'scenario: provisioner failed on purpose' >&2; exit 1"
  }
}
