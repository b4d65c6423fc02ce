# Temporary storage: downloaded raw files waiting for their processor.
# Every object expires temp_object_expiration_days after it was written,
# whether or not a processor cleaned it up.
resource "aws_s3_bucket" "temp" {
  bucket_prefix = "${var.name}-temp-"
  force_destroy = true # scratch data only
}

resource "aws_s3_bucket_lifecycle_configuration" "temp" {
  bucket = aws_s3_bucket.temp.id

  rule {
    id     = "expire-temporary-objects"
    status = "Enabled"

    filter {}

    expiration {
      days = var.temp_object_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Permanent storage: refined results. Versioned, private, encrypted, and
# kept by `terraform destroy` unless emptied first.
resource "aws_s3_bucket" "permanent" {
  bucket_prefix = "${var.name}-permanent-"
}

resource "aws_s3_bucket_versioning" "permanent" {
  bucket = aws_s3_bucket.permanent.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "permanent" {
  bucket = aws_s3_bucket.permanent.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Lifecycle rules on a versioned bucket must follow versioning.
  depends_on = [aws_s3_bucket_versioning.permanent]
}

# Both buckets: no public access, encryption at rest, bucket-owner objects.
locals {
  buckets = {
    temp      = aws_s3_bucket.temp.id
    permanent = aws_s3_bucket.permanent.id
  }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each = local.buckets

  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "all" {
  for_each = local.buckets

  bucket = each.value

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.buckets

  bucket = each.value

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}
