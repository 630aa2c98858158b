//! placeholder: the audit log (issue 4), being written.
