terraform {
  backend "local" {
    path = "__STATE_DIR__/network.tfstate"
  }
}

resource "terraform_data" "vpc" {
  input = "vpc-1"
}

output "vpc_id" {
  value = terraform_data.vpc.output
}
