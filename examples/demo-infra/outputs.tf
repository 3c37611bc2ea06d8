output "app" {
  description = "The app's settings as applied."
  value       = terraform_data.app.output
}
