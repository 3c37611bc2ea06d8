terraform {
  backend "local" {
    path = "__STATE_DIR__/happy.tfstate"
  }
}

resource "terraform_data" "a" {
  input = "base"
}

resource "terraform_data" "b" {
  input = "new"
}

output "b" {
  value = terraform_data.b.output
}
