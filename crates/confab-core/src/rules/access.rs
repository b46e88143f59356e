//! Who may see a room and read its timeline: the checks reads and commands share.

use crate::error::{DomainError, ErrorCode};
use crate::model::{Access, Member, MemberState, Visibility};

/// May `access`'s viewer see the room's details? Public rooms: every user of the app. Private
/// rooms: members, and those invited or applying; everyone else gets "not found".
pub fn can_view_room(access: &Access) -> Result<(), DomainError> {
    let involved = access.member.as_ref().is_some_and(|m| {
        matches!(
            m.state,
            MemberState::Joined | MemberState::Invited | MemberState::Applied
        )
    });
    if involved || access.room.visibility == Visibility::Public {
        Ok(())
    } else {
        Err(DomainError::room_not_found())
    }
}

/// May the viewer read the timeline, members and changes? Joined members only; a public room
/// answers "not a member" to others, a private one "not found".
pub fn can_read_timeline(access: &Access) -> Result<Member, DomainError> {
    match &access.member {
        Some(m) if m.state == MemberState::Joined => Ok(m.clone()),
        Some(m)
            if m.state == MemberState::Invited || access.room.visibility == Visibility::Public =>
        {
            let _ = m;
            Err(not_a_member())
        }
        _ if access.room.visibility == Visibility::Public => Err(not_a_member()),
        _ => Err(DomainError::room_not_found()),
    }
}

pub(super) fn not_a_member() -> DomainError {
    DomainError::new(ErrorCode::NotAMember, "you are not a member of this room")
}
