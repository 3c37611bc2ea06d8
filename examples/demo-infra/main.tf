# A tiny Terraform root for `npm run demo`: built-in resources only, so it needs no provider downloads,
# no cloud account and no network. The demo copies it into a local git repository and points the local
# backend at an absolute path in its temp dir, so every PR checkout shares one state.
terraform {
  required_version = ">= 1.4"

  backend "local" {
    path = "terraform.tfstate"
  }
}

resource "terraform_data" "app" {
  input = {
    name        = "${var.environment}-app"
    replicas    = var.replicas
    environment = var.environment
  }
}
