"""What both pipelines use: downloads, errors, job start-up, COG creation options, geometry."""
