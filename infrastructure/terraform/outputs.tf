output "ops_public_ip" {
  description = "Public address of the ops host: ssh ubuntu@<this>."
  value       = aws_instance.ops.public_ip
}

output "nomad_server_private_ips" {
  description = "Private addresses of the three Nomad servers."
  value       = local.server_ips
}

output "nomad_addr" {
  description = "NOMAD_ADDR inside the VPC (the ops host, the workers)."
  value       = local.nomad_addr
}

output "nomad_datacenter" {
  description = "Nomad datacenter the clients belong to."
  value       = var.nomad_datacenter
}

output "refinery_temp_storage" {
  description = "REFINERY_TEMP_STORAGE for this cluster."
  value       = local.temp_storage_url
}

output "refinery_permanent_storage" {
  description = "REFINERY_PERMANENT_STORAGE for this cluster."
  value       = local.permanent_storage_url
}

output "temp_bucket" {
  description = "Name of the temporary bucket (objects expire)."
  value       = aws_s3_bucket.temp.bucket
}

output "permanent_bucket" {
  description = "Name of the permanent, versioned bucket."
  value       = aws_s3_bucket.permanent.bucket
}

output "db_address" {
  description = "Host name of the PostgreSQL database."
  value       = aws_db_instance.main.address
}

output "db_port" {
  description = "Port of the PostgreSQL database."
  value       = aws_db_instance.main.port
}

output "database_url_without_password" {
  description = "DATABASE_URL with the password left out: put the password after the user name (user:password@)."
  value       = "postgres://${var.db_username}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${var.db_name}"
}

output "ecr_registry" {
  description = "Registry to push the images to (REGISTRY for make images)."
  value       = var.create_ecr_repositories ? local.ecr_registry : null
}

output "image_repositories" {
  description = "Repository URL of each refinery image."
  value       = { for name, repo in aws_ecr_repository.refinery : name => repo.repository_url }
}

output "client_autoscaling_group" {
  description = "Name of the Nomad clients' autoscaling group."
  value       = aws_autoscaling_group.nomad_client.name
}

output "worker_role_arn" {
  description = "IAM role of the workers and the ops host."
  value       = aws_iam_role.worker.arn
}
