terraform {
  backend "local" {
    path = "__STATE_DIR__/rollback.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "base"
}
