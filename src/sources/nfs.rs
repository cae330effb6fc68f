//! Placeholder: the NFS source arrives with issue 4.
