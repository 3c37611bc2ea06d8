output "zone" {
  value = "example.test"
}
