terraform {
  backend "local" {
    path = "__STATE_DIR__/app.tfstate"
  }
}

variable "vpc_id" {
  type = string
}

resource "terraform_data" "app" {
  input = "app-in-${var.vpc_id}"
}
