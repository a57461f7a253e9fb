"""Source preparation in Mapterhorn's layout: catalog entry → chunks → COGs → bounds.csv, coverage, tarball."""
