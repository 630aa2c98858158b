//! placeholder: the archive (issue 4), being written.
