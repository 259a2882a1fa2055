//! The permissions of Artemis's security model, and who holds them.

use std::fmt;

/// One thing a role may be allowed to do on an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// SEND to the address.
    Send,
    /// SUBSCRIBE to the address.
    Consume,
    /// Browse its queues (SUBSCRIBE with `browser:true`) without consuming.
    Browse,
    /// Auto-create the address.
    CreateAddress,
    /// Delete the address (reserved).
    DeleteAddress,
    /// Auto-create a durable queue.
    CreateDurableQueue,
    /// Delete a durable queue (durable UNSUBSCRIBE).
    DeleteDurableQueue,
    /// Create a non-durable subscription queue.
    CreateNonDurableQueue,
    /// Delete a non-durable queue (reserved).
    DeleteNonDurableQueue,
    /// Management: attach to and delete other users' durable subscriptions.
    Manage,
}

impl Permission {
    /// Every permission, in the order of the config keys.
    pub const ALL: [Permission; 10] = [
        Permission::Send,
        Permission::Consume,
        Permission::Browse,
        Permission::CreateAddress,
        Permission::DeleteAddress,
        Permission::CreateDurableQueue,
        Permission::DeleteDurableQueue,
        Permission::CreateNonDurableQueue,
        Permission::DeleteNonDurableQueue,
        Permission::Manage,
    ];

    /// The config key and the name used in ERROR frames.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Send => "send",
            Permission::Consume => "consume",
            Permission::Browse => "browse",
            Permission::CreateAddress => "create-address",
            Permission::DeleteAddress => "delete-address",
            Permission::CreateDurableQueue => "create-durable-queue",
            Permission::DeleteDurableQueue => "delete-durable-queue",
            Permission::CreateNonDurableQueue => "create-non-durable-queue",
            Permission::DeleteNonDurableQueue => "delete-non-durable-queue",
            Permission::Manage => "manage",
        }
    }

    /// Index into per-permission arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a connection acts as: an authenticated user or an anonymous one, with roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name; `None` for an anonymous connection.
    pub name: Option<String>,
    /// The roles permissions are granted to.
    pub roles: Vec<String>,
    /// Its roles are its own (an admin bearer token), not looked up in the user table at each
    /// check: no reload can add or remove such a name there.
    pub own_roles: bool,
}

impl Principal {
    /// An anonymous connection with these roles.
    pub fn anonymous(roles: Vec<String>) -> Principal {
        Principal {
            name: None,
            roles,
            own_roles: false,
        }
    }

    /// An authenticated user.
    pub fn user(name: impl Into<String>, roles: Vec<String>) -> Principal {
        Principal {
            name: Some(name.into()),
            roles,
            own_roles: false,
        }
    }

    /// An admin API bearer token with no user of its name: it acts with `roles` (its admin
    /// role), which no configuration reload of the users changes.
    pub fn token(name: impl Into<String>, roles: Vec<String>) -> Principal {
        Principal {
            name: Some(name.into()),
            roles,
            own_roles: true,
        }
    }

    /// How ERROR frames and logs name it: `user 'bob'` or `anonymous user`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("user '{n}'"),
            None => "anonymous user".to_string(),
        }
    }
}
