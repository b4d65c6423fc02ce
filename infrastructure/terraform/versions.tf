terraform {
  # 1.11 for write-only arguments (the database password never enters the
  # state or the plan).
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project   = "data-refinery"
      Cluster   = var.name
      ManagedBy = "terraform"
    }
  }
}
