//! The upload records, the queue of uploads, retries and resume (being
//! built).

pub struct Uploads;
