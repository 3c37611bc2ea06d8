terraform {
  backend "local" {
    path = "__STATE_DIR__/app.tfstate"
  }
}

variable "endpoint" {}

resource "terraform_data" "app" {
  input = var.endpoint
}

resource "terraform_data" "cache" {
  input = "redis"
}
