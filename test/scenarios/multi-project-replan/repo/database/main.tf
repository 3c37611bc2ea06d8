terraform {
  backend "local" {
    path = "__STATE_DIR__/database.tfstate"
  }
}

variable "vpc_id" {}

resource "terraform_data" "db" {
  input = "${var.vpc_id}/db"
}

output "endpoint" {
  value = "db.${var.vpc_id}"
}
