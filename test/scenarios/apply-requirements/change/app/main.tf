terraform {
  backend "local" {
    path = "__STATE_DIR__/app.tfstate"
  }
}

variable "vpc_id" {}

resource "terraform_data" "app" {
  input = "${var.vpc_id}/app"
}

resource "terraform_data" "cache" {
  input = "redis"
}
