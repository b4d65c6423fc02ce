# ---------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------

variable "name" {
  description = "Name of this deployment; prefixes every resource name. Lowercase letters, digits and hyphens."
  type        = string
  default     = "refinery"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "admin_cidr_blocks" {
  description = "CIDR blocks allowed to SSH into the ops host (for example [\"203.0.113.7/32\"]). Nothing else is reachable from outside the VPC."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidr_blocks) > 0 && alltrue([for c in var.admin_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "admin_cidr_blocks must be a non-empty list of CIDR blocks."
  }
}

variable "ssh_key_name" {
  description = "Name of an existing EC2 key pair, installed on every instance for SSH (through the ops host)."
  type        = string
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC. Each availability zone gets a /20 carved from it."
  type        = string
  default     = "10.42.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones (and subnets) to spread over. RDS needs at least 2."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
}

# ---------------------------------------------------------------------------
# Nomad
# ---------------------------------------------------------------------------

variable "nomad_version" {
  description = "Version of the HashiCorp apt package \"nomad\" to install, as apt spells it (for example \"1.9.7-1\"). Empty installs the newest."
  type        = string
  default     = ""
}

variable "nomad_datacenter" {
  description = "Nomad datacenter name. Job specifications must list it in Datacenters."
  type        = string
  default     = "dc1"
}

variable "nomad_region" {
  description = "Nomad region name."
  type        = string
  default     = "global"
}

variable "server_instance_type" {
  description = "EC2 instance type of the three Nomad servers."
  type        = string
  default     = "t3.medium"
}

variable "client_instance_type" {
  description = "EC2 instance type of the Nomad clients (the workers)."
  type        = string
  default     = "m6i.2xlarge"
}

variable "client_min_size" {
  description = "Minimum number of Nomad clients."
  type        = number
  default     = 1
}

variable "client_desired_capacity" {
  description = "Desired number of Nomad clients."
  type        = number
  default     = 2
}

variable "client_max_size" {
  description = "Maximum number of Nomad clients."
  type        = number
  default     = 10
}

variable "client_root_volume_gb" {
  description = "Root volume size of each Nomad client, in GiB. Holds Docker images and the refinery-data scratch volume."
  type        = number
  default     = 200
}

variable "gpu_client_count" {
  description = "Number of GPU Nomad clients. 0 creates no GPU launch template or autoscaling group."
  type        = number
  default     = 0
}

variable "gpu_client_instance_type" {
  description = "EC2 instance type of the GPU Nomad clients."
  type        = string
  default     = "g4dn.xlarge"
}

variable "gpu_ami_name_filter" {
  description = "Name filter for the GPU clients' AMI (owner amazon). It must bring the NVIDIA driver, Docker and the NVIDIA Container Toolkit and be Debian/Ubuntu based."
  type        = string
  default     = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
}

variable "nvidia_plugin_version" {
  description = "Version of the nomad-device-nvidia plugin, used when the HashiCorp apt repository does not have the package."
  type        = string
  default     = "1.1.0"
}

variable "ops_instance_type" {
  description = "EC2 instance type of the ops host (SSH entry point; runs one-off manage.py commands and the Foreman)."
  type        = string
  default     = "t3.small"
}

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------

variable "db_password" {
  description = "Master password of the PostgreSQL database. Ephemeral: it is sent to RDS but never stored in the state or the plan. Only URL-safe characters, so that it can go into DATABASE_URL unescaped."
  type        = string
  ephemeral   = true
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9_.~-]{16,128}$", var.db_password))
    error_message = "db_password must be 16-128 characters from A-Z a-z 0-9 _ . ~ -"
  }
}

variable "db_password_version" {
  description = "Increase by one to send a new db_password to RDS (write-only arguments are only sent when this changes)."
  type        = number
  default     = 1
}

variable "db_username" {
  description = "Master user name of the PostgreSQL database."
  type        = string
  default     = "refinery"
}

variable "db_name" {
  description = "Name of the database to create."
  type        = string
  default     = "refinery"
}

variable "db_engine_version" {
  description = "PostgreSQL engine version (major, or major.minor)."
  type        = string
  default     = "15"

  validation {
    condition     = can(regex("^15(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "The refinery is built for PostgreSQL 15."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial RDS storage, in GiB."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Upper bound for RDS storage autoscaling, in GiB."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Run RDS with a standby in a second availability zone."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups to keep."
  type        = number
  default     = 7
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database. Set to false and apply before `terraform destroy`."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Delete the database without a final snapshot."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------
# Storage and images
# ---------------------------------------------------------------------------

variable "temp_object_expiration_days" {
  description = "Objects in the temporary bucket are deleted this many days after they were written."
  type        = number
  default     = 7

  validation {
    condition     = var.temp_object_expiration_days >= 1
    error_message = "temp_object_expiration_days must be at least 1."
  }
}

variable "storage_prefix" {
  description = "Key prefix inside both buckets (the \"prefix\" of s3://bucket/prefix)."
  type        = string
  default     = "refinery"
}

variable "create_ecr_repositories" {
  description = "Create ECR repositories for the refinery images and let the instances pull from them."
  type        = bool
  default     = true
}
