"""What the tests share: tiny model builders, demo datasets, image files, test stages, an S3 server."""
