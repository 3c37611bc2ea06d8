terraform {
  backend "local" {
    path = "__STATE_DIR__/web.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "a1"
}

resource "terraform_data" "b" {
  input = "hotfix"
}
