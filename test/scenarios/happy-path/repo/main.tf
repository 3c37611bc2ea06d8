terraform {
  backend "local" {
    path = "__STATE_DIR__/happy.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "base"
}
