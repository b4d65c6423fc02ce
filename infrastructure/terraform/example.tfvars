# Copy to terraform.tfvars (ignored by git) and edit. The database password
# is not set here: export TF_VAR_db_password instead.
name              = "refinery"
aws_region        = "us-east-1"
admin_cidr_blocks = ["203.0.113.7/32"]
ssh_key_name      = "my-key-pair"

client_instance_type    = "m6i.2xlarge"
client_desired_capacity = 2
client_max_size         = 10

gpu_client_count = 0

temp_object_expiration_days = 7
