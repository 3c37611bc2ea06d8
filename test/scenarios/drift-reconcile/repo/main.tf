terraform {
  backend "local" {
    path = "__STATE_DIR__/infra.tfstate"
  }
}

resource "terraform_data" "server" {
  input = "size-small"
}
