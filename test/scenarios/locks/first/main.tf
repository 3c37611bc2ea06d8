terraform {
  backend "local" {
    path = "__STATE_DIR__/locks.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "base"
}

resource "terraform_data" "b" {
  input = "first"
}
