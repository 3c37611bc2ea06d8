variable "environment" {
  description = "Name of the environment the resources belong to."
  type        = string
  default     = "demo"
}

variable "replicas" {
  description = "How many app replicas to run."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 10
    error_message = "replicas must be between 1 and 10."
  }
}
