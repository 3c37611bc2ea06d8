terraform {
  backend "local" {
    path = "__STATE_DIR__/app.tfstate"
  }
}

variable "endpoint" {}

resource "terraform_data" "app" {
  input = var.endpoint
}
