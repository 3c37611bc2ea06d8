terraform {
  backend "local" {
    path = "__STATE_DIR__/webhook-reconcile.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "base"
}
